"""The built-in development issuer: off unless asked, production-shaped tokens, a private key."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from api.authn import authenticate
from api.devissuer import KEY_FILE, DevIssuer, enabled
from api.tokens import InvalidToken, TokenValidator
from domain.principals import Customer, Partner, SupportAgent

from .forge import AUDIENCE, ISSUER, new_key, trusted, unverified

DEV = "http://127.0.0.1:8000/dev-issuer"


async def resolve(issuer: str, sub: str) -> uuid.UUID | None:
    return None


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({"DSAR_DEV_ISSUER": "1"}, True),
        ({}, False),
        ({"DSAR_DEV_ISSUER": ""}, False),
        ({"DSAR_DEV_ISSUER": "0"}, False),
        ({"DSAR_DEV_ISSUER": "true"}, False),
        ({"DSAR_DEV_ISSUER": "yes"}, False),
        ({"DSAR_DEV_ISSUER": " 1"}, False),
        ({"DSAR_DEV_ISSUER": "1 "}, False),
        ({"DSAR_DEV_ISSUER": "01"}, False),
        ({"dsar_dev_issuer": "1"}, False),
    ],
)
def test_enabled_only_by_exactly_one(env: dict[str, str], on: bool) -> None:
    assert enabled(env) is on


def test_key_is_stored_private_and_reused(tmp_path: Path) -> None:
    first = DevIssuer(tmp_path / "home", DEV, AUDIENCE)
    path = tmp_path / "home" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert DevIssuer(tmp_path / "home", DEV, AUDIENCE).kid == first.kid
    assert "d" not in first.jwks()["keys"][0]  # the published set holds the public key only


async def test_tokens_have_the_production_shape(tmp_path: Path) -> None:
    dev = DevIssuer(tmp_path, DEV, AUDIENCE)
    validator = TokenValidator({DEV: dev.key_set()}, AUDIENCE)
    kinds = {"customer": Customer, "partner": Partner, "support": SupportAgent}
    for kind, principal_type in kinds.items():
        token = dev.mint(kind, "demo-" + kind)  # type: ignore[arg-type]  # every Kind, in a loop
        header, claims = unverified(token)
        assert header == {"alg": "ES256", "typ": "at+jwt", "kid": dev.kid}
        assert {"iss", "aud", "sub", "client_id", "jti", "iat", "exp", "scope"} <= claims.keys()
        assert await validator.validate(token)
        principal = await authenticate(f"Bearer {token}", validator, resolve)
        assert isinstance(principal, principal_type)
    customer = unverified(dev.mint("customer", "alice", acr="urn:x", auth_time=5))[1]
    assert (customer["acr"], customer["auth_time"]) == ("urn:x", 5)
    with pytest.raises(ValueError):
        dev.mint("admin", "root")  # type: ignore[arg-type]  # the point of the test


async def test_dev_tokens_are_refused_where_the_dev_issuer_is_not_trusted(tmp_path: Path) -> None:
    dev = DevIssuer(tmp_path, DEV, AUDIENCE)
    production = TokenValidator({ISSUER: trusted(new_key())}, AUDIENCE)
    with pytest.raises(InvalidToken) as caught:
        await production.validate(dev.mint("customer", "alice"))
    assert caught.value.code == "issuer"
    # Nor can a dev token pretend to be the production issuer: its key is not in that key set.
    spoof = DevIssuer(tmp_path, ISSUER, AUDIENCE)
    with pytest.raises(InvalidToken) as caught:
        await production.validate(spoof.mint("support", "agent-1"))
    assert caught.value.code == "unknown_key"


async def test_expired_dev_token_is_refused(tmp_path: Path) -> None:
    dev = DevIssuer(tmp_path, DEV, AUDIENCE)
    validator = TokenValidator({DEV: dev.key_set()}, AUDIENCE)
    with pytest.raises(InvalidToken):
        await validator.validate(dev.mint("customer", "alice", ttl=-120))
