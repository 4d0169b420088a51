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
    ("exc", "status", "error"),
    [
        (NoCredentials(), 401, "unauthenticated"),
        (InvalidToken("expired_token:exp"), 401, "invalid_token"),
        (InsufficientScope("dsar:self"), 403, "insufficient_scope"),
        (StepUpRequired(("urn:a",), 60), 401, "insufficient_user_authentication"),
    ],
)
def test_responses_hold_the_code_and_nothing_else(
    exc: NoCredentials | InvalidToken | InsufficientScope | StepUpRequired,
    status: int,
    error: str,
) -> None:
    response = error_response(exc)
    assert response.status_code == status
    assert orjson.loads(bytes(response.body)) == {"error": error}
    assert response.headers["www-authenticate"].startswith('Bearer realm="dsar"')
    assert "expired_token" not in response.headers["www-authenticate"]
    assert response.headers["cache-control"] == "no-store"
