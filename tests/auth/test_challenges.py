"""WWW-Authenticate values (RFC 6750 section 3, RFC 9470 section 3) and the mapped responses."""

from __future__ import annotations

import orjson
import pytest

from api.authn import (
    InsufficientScope,
    InvalidToken,
    NoCredentials,
    StepUpRequired,
)
from api.challenges import (
    challenge,
    error_response,
    insufficient_scope,
    insufficient_user_authentication,
    invalid_token,
    no_credentials,
    token_problem,
)


def test_header_values() -> None:
    assert no_credentials() == 'Bearer realm="dsar"'
    assert invalid_token() == 'Bearer realm="dsar", error="invalid_token"'
    assert insufficient_scope("portability:pull") == (
        'Bearer realm="dsar", error="insufficient_scope", scope="portability:pull"'
    )
    assert insufficient_user_authentication(("urn:a", "urn:b"), 300) == (
        'Bearer realm="dsar", error="insufficient_user_authentication", '
        'acr_values="urn:a urn:b", max_age="300"'
    )


@pytest.mark.parametrize("value", ['a"b', "a\\b", "a\r\nX-Injected: 1", "é", ""])
def test_values_that_would_break_the_header_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        challenge("insufficient_scope", scope=value)


@pytest.mark.parametrize(
    ("exc", "status", "extensions"),
    [
        (NoCredentials(), 401, {"code": "UNAUTHENTICATED"}),
        (
            InvalidToken("expired_token:exp"),
            401,
            {
                "code": "INVALID_TOKEN",
                "error": "invalid_token",
                "error_description": "The access token has expired.",
            },
        ),
        (
            InsufficientScope("dsar:self"),
            403,
            {"code": "INSUFFICIENT_SCOPE", "error": "insufficient_scope", "scope": "dsar:self"},
        ),
        (
            StepUpRequired(("urn:a",), 60),
            401,
            {
                "code": "INSUFFICIENT_USER_AUTHENTICATION",
                "error": "insufficient_user_authentication",
                "acr_values": "urn:a",
                "max_age": 60,
            },
        ),
    ],
)
def test_responses_are_graphql_shaped(
    exc: NoCredentials | InvalidToken | InsufficientScope | StepUpRequired,
    status: int,
    extensions: dict[str, object],
) -> None:
    response = error_response(exc)
    assert response.status_code == status
    body = orjson.loads(bytes(response.body))
    assert list(body) == ["errors"]
    [error] = body["errors"]
    assert error["extensions"] == extensions
    assert error["message"]
    assert response.headers["www-authenticate"].startswith('Bearer realm="dsar"')
    assert "expired_token" not in response.headers["www-authenticate"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("code", "description"),
    [
        ("expired_token:exp", "The access token has expired."),
        ("invalid_claim:aud", "The access token is meant for another audience."),
        ("unknown_key", "The access token is signed with a key its issuer does not publish."),
        ("missing_claim:jti", "The access token lacks the required claim jti."),
        ('invalid_claim:a"b', "The access token was refused."),
        ("something_new", "The access token was refused."),
    ],
)
def test_each_token_refusal_is_described_in_fixed_words(code: str, description: str) -> None:
    assert token_problem(code) == description
    header = error_response(InvalidToken(code)).headers["www-authenticate"]
    assert header == (
        f'Bearer realm="dsar", error="invalid_token", error_description="{description}"'
    )
