"""From header to principal, and from refusal to 401/403, through a small Starlette app."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.authn import (
    InsufficientScope,
    InvalidToken,
    NoCredentials,
    StepUpRequired,
    authenticate,
    bearer_token,
    require_scope,
    require_strong_login,
)
from api.challenges import error_response
from api.tokens import TokenValidator
from domain.principals import Authentication, Customer, Partner, SupportAgent

from .forge import AUDIENCE, ISSUER, claims, new_key, sign, trusted

KEY = new_key()
VALIDATOR = TokenValidator({ISSUER: trusted(KEY)}, AUDIENCE)
SUBJECT = uuid.UUID("00000000-0000-4000-8000-00000000000a")
STRONG = ("urn:dsar:acr:strong",)


async def resolve(issuer: str, sub: str) -> uuid.UUID | None:
    return SUBJECT if (issuer, sub) == (ISSUER, "alice") else None


def app(reached: list[str]) -> Starlette:
    async def me(request: Request) -> Response:
        try:
            principal = await authenticate(request.headers.get("authorization"), VALIDATOR, resolve)
            require_scope(principal, "dsar:self")
            require_strong_login(principal, STRONG, 300)
        except (
            NoCredentials,
            InvalidToken,
            InsufficientScope,
            StepUpRequired,
        ) as e:
            return error_response(e)
        reached.append(principal.kind)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/me", me)])


async def call(headers: dict[str, str], reached: list[str]) -> httpx.Response:
    transport = httpx.ASGITransport(app(reached))
    async with httpx.AsyncClient(transport=transport, base_url="http://dsar.test") as client:
        return await client.get("/me", headers=headers)


async def test_no_authorization_header_is_a_plain_challenge() -> None:
    reached: list[str] = []
    resp = await call({}, reached)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer realm="dsar"'
    assert resp.json() == {
        "errors": [
            {
                "message": "Send an access token: Authorization: Bearer <token>.",
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ]
    }
    assert reached == []


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("Basic YWxpY2U6c2VjcmV0", None),
        ("Digest username=alice", None),
        ("Token abc", None),
        ("", None),
        ("Bearer", "invalid_token"),
        ("Bearer    ", "invalid_token"),
        ("Bearer a b", "invalid_token"),
        ("Bearer not.a.token", "invalid_token"),
    ],
)
async def test_other_schemes_and_malformed_bearers(header: str, error: str | None) -> None:
    reached: list[str] = []
    resp = await call({"authorization": header}, reached)
    assert resp.status_code == 401
    expected = 'Bearer realm="dsar"' + (
        f', error="{error}", error_description="The access token is not a well-formed signed JWT."'
        if error
        else ""
    )
    assert resp.headers["www-authenticate"] == expected
    assert reached == []


async def test_doubled_bearer_is_refused() -> None:
    token = sign(KEY, claims())
    reached: list[str] = []
    resp = await call({"authorization": f"Bearer {token} {token}"}, reached)
    assert resp.status_code == 401
    assert "invalid_token" in resp.headers["www-authenticate"]
    assert reached == []


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_scheme_is_case_insensitive(scheme: str) -> None:
    reached: list[str] = []
    resp = await call({"authorization": f"{scheme} {sign(KEY, claims())}"}, reached)
    assert resp.status_code == 200
    assert reached == ["customer"]


async def test_refusal_bodies_say_why_in_fixed_words_and_carry_no_token() -> None:
    token = sign(KEY, claims(exp=int(time.time()) - 3600))
    resp = await call({"authorization": f"Bearer {token}"}, [])
    assert resp.status_code == 401
    said = "The access token has expired."
    assert resp.json() == {
        "errors": [
            {
                "message": said,
                "extensions": {
                    "code": "INVALID_TOKEN",
                    "error": "invalid_token",
                    "error_description": said,
                },
            }
        ]
    }
    assert resp.headers["www-authenticate"] == (
        f'Bearer realm="dsar", error="invalid_token", error_description="{said}"'
    )
    for part in token.split("."):
        assert part not in resp.text and part not in resp.headers["www-authenticate"]
    assert "alice" not in resp.text and "expired_token" not in resp.text
    assert resp.headers["cache-control"] == "no-store"


async def test_token_without_the_operations_scope_is_403() -> None:
    token = sign(KEY, claims(sub="partner-one", client_id="partner-one", scope="portability:pull"))
    resp = await call({"authorization": f"Bearer {token}"}, [])
    assert resp.status_code == 403
    assert resp.headers["www-authenticate"] == (
        'Bearer realm="dsar", error="insufficient_scope", scope="dsar:self"'
    )
    assert resp.json()["errors"][0]["extensions"] == {
        "code": "INSUFFICIENT_SCOPE",
        "error": "insufficient_scope",
        "scope": "dsar:self",
    }


@pytest.mark.parametrize(
    ("acr", "age"), [("urn:dsar:acr:weak", 0), ("urn:dsar:acr:strong", 301), (None, 0)]
)
async def test_weak_or_stale_login_asks_for_step_up(acr: str | None, age: int) -> None:
    token = sign(KEY, claims(acr=acr, auth_time=int(time.time()) - age))
    reached: list[str] = []
    resp = await call({"authorization": f"Bearer {token}"}, reached)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == (
        'Bearer realm="dsar", error="insufficient_user_authentication", '
        'acr_values="urn:dsar:acr:strong", max_age="300"'
    )
    assert reached == []


async def test_principal_kinds() -> None:
    async def principal(**overrides: object) -> object:
        token = sign(KEY, claims(**overrides))
        return await authenticate(f"Bearer {token}", VALIDATOR, resolve)

    customer = await principal()
    assert isinstance(customer, Customer)
    assert (customer.issuer, customer.sub, customer.subject_id) == (ISSUER, "alice", SUBJECT)
    assert customer.authentication.acr == "urn:dsar:acr:strong"

    unlinked = await principal(sub="nobody")
    assert isinstance(unlinked, Customer) and unlinked.subject_id is None

    # A partner whose sub looks like a subject id is still only a partner.
    partner = await principal(sub=str(SUBJECT), client_id="partner-one", scope="portability:pull")
    assert isinstance(partner, Partner) and partner.client_id == "partner-one"

    # A client-credentials token (sub == client_id) with dsar:self names no person.
    machine = await principal(sub="bot", client_id="bot", scope="dsar:self")
    assert isinstance(machine, Partner)
    with pytest.raises(InsufficientScope):
        require_scope(machine, "portability:pull")

    agent = await principal(sub="agent-1", client_id="console", scope="support:read")
    assert isinstance(agent, SupportAgent) and agent.sub == "agent-1"

    with pytest.raises(InsufficientScope) as caught:
        await principal(scope="openid profile")
    assert caught.value.scope == "dsar:self"


def test_require_strong_login_rules() -> None:
    now = 1_000_000.0

    def person(acr: str | None, auth_time: int | None) -> Customer:
        login = Authentication(acr=acr, auth_time=auth_time)
        return Customer(ISSUER, "alice", SUBJECT, authentication=login)

    require_strong_login(person("urn:dsar:acr:strong", int(now) - 300), STRONG, 300, now)
    for acr, auth_time in [
        ("urn:dsar:acr:strong", int(now) - 301),
        ("urn:dsar:acr:strong", None),
        ("urn:dsar:acr:strong", int(now) + 3600),
        ("urn:dsar:acr:weak", int(now)),
        (None, int(now)),
    ]:
        with pytest.raises(StepUpRequired) as caught:
            require_strong_login(person(acr, auth_time), STRONG, 300, now)
        assert (caught.value.acr_values, caught.value.max_age) == (STRONG, 300)
    with pytest.raises(StepUpRequired):
        require_strong_login(Partner(ISSUER, "partner-one"), STRONG, 300, now)


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("  bearer abc  ") == "abc"
    for header in (None, "", "   ", "Basic abc", "Bearerabc"):
        with pytest.raises(NoCredentials):
            bearer_token(header)
    for header in ("Bearer", "Bearer a b", "Bearer a\tb"):
        with pytest.raises(InvalidToken):
            bearer_token(header)
