"""IssuerKeys over an injected transport: discovery, limits, cooldown, no fetch a token asks for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import OctKey

from api.jwks import IssuerKeys, allowed_url, parse_jwks
from api.tokens import InvalidToken, TokenValidator

from .forge import AUDIENCE, ISSUER, claims, new_key, public_jwks, sign

KEY = new_key()
MakeKeys = Callable[..., IssuerKeys]


class Provider:
    """A fake issuer answering discovery and JWKS; records every request made to anything."""

    def __init__(self, jwks: dict[str, Any], discovery: dict[str, Any] | None = None) -> None:
        self.jwks = jwks
        self.discovery = discovery or {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"}
        self.requests: list[str] = []
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if self.down:
            raise httpx.ConnectError("down", request=request)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery)
        if request.url.path == "/jwks":
            return httpx.Response(200, json=self.jwks)
        return httpx.Response(404)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def test_only_https_or_loopback_http() -> None:
    assert allowed_url("https://idp.example")
    assert allowed_url("http://127.0.0.1:8080")
    assert allowed_url("http://[::1]:8080/x")
    assert allowed_url("http://localhost:1")
    for url in ("http://idp.example", "http://10.0.0.1", "ftp://idp.example", "file:///etc", "x"):
        assert not allowed_url(url)
    with pytest.raises(ValueError):
        IssuerKeys("http://idp.example")


def test_symmetric_private_and_kidless_keys_are_never_loaded() -> None:
    oct_key = {**OctKey.generate_key(256).as_dict(), "kid": "oct"}
    private = {**new_key().as_dict(private=True), "kid": "priv"}
    kidless = {k: v for k, v in new_key().as_dict().items() if k != "kid"}
    enc = {**new_key().as_dict(), "kid": "enc", "use": "enc"}
    junk = {"kty": "EC", "kid": "junk", "crv": "P-256", "x": "AA"}
    good = public_jwks(KEY)["keys"][0]
    keys = parse_jwks({"keys": [oct_key, private, kidless, enc, junk, "x", good]})
    assert list(keys) == [KEY.kid]


async def test_discovery_then_jwks_and_readiness(make_keys: MakeKeys) -> None:
    provider = Provider(public_jwks(KEY))
    keys = make_keys(ISSUER, transport=provider.transport)
    assert not keys.loaded
    assert await keys.refresh()
    assert keys.loaded
    assert provider.requests == [f"{ISSUER}/.well-known/openid-configuration", f"{ISSUER}/jwks"]
    assert await keys.key_for(KEY.kid) is not None


@pytest.mark.parametrize(
    "discovery",
    [
        {"issuer": "https://evil.test", "jwks_uri": f"{ISSUER}/jwks"},  # OIDC Discovery 4.3
        {"issuer": ISSUER + "/", "jwks_uri": f"{ISSUER}/jwks"},
        {"issuer": ISSUER, "jwks_uri": "http://issuer.test/jwks"},  # not https
        {"issuer": ISSUER},
    ],
)
async def test_bad_discovery_loads_nothing(make_keys: MakeKeys, discovery: dict[str, Any]) -> None:
    provider = Provider(public_jwks(KEY), discovery)
    keys = make_keys(ISSUER, transport=provider.transport)
    assert not await keys.refresh()
    assert not keys.loaded
    assert all("http://issuer.test" not in url for url in provider.requests)


async def test_oversized_redirected_or_broken_responses(make_keys: MakeKeys) -> None:
    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"keys": [' + b" " * 70_000 + b"]}")

    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://evil.test/jwks"})

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[1, 2")

    for handler in (huge, redirect, not_json):
        keys = make_keys(ISSUER, transport=httpx.MockTransport(handler))
        assert not await keys.refresh()
        assert not keys.loaded


async def test_unknown_kid_refetches_at_most_once_per_cooldown(make_keys: MakeKeys) -> None:
    provider = Provider(public_jwks(KEY))
    clock = [1000.0]
    keys = make_keys(ISSUER, transport=provider.transport, cooldown=30, clock=lambda: clock[0])
    await keys.refresh()
    provider.requests.clear()
    for _ in range(20):  # a stream of made-up kids
        assert await keys.key_for("made-up") is None
    assert len(provider.requests) == 0  # the refresh just happened: still in the cooldown
    clock[0] += 31
    for _ in range(20):
        assert await keys.key_for("made-up-too") is None
    assert len(provider.requests) == 2  # one discovery + one JWKS fetch, then cooldown again


async def test_provider_down_keeps_the_last_good_keys(make_keys: MakeKeys) -> None:
    provider = Provider(public_jwks(KEY))
    keys = make_keys(ISSUER, transport=provider.transport, cooldown=0)
    await keys.refresh()
    provider.down = True
    assert not await keys.refresh()
    assert keys.loaded
    validator = TokenValidator({ISSUER: keys}, AUDIENCE)
    assert await validator.validate(sign(KEY, claims()))
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(sign(new_key(), claims()))
    assert caught.value.code == "unknown_key"


@pytest.mark.parametrize("header", ["jku", "x5u"])
async def test_jku_and_x5u_are_never_fetched(make_keys: MakeKeys, header: str) -> None:
    provider = Provider(public_jwks(KEY))
    keys = make_keys(ISSUER, transport=provider.transport, cooldown=0)
    await keys.refresh()
    validator = TokenValidator({ISSUER: keys}, AUDIENCE)
    attacker = new_key()
    for kid in (KEY.kid, attacker.kid):
        token = sign(attacker, claims(), kid=kid, **{header: "https://evil.test/keys"})
        with pytest.raises(InvalidToken):
            await validator.validate(token)
    assert provider.requests == [f"{ISSUER}/.well-known/openid-configuration", f"{ISSUER}/jwks"]


async def test_refresh_loop_runs_until_cancelled(make_keys: MakeKeys) -> None:
    provider = Provider(public_jwks(KEY))
    keys = make_keys(ISSUER, transport=provider.transport)
    task = asyncio.create_task(keys.run_refresh_loop(0.01))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert keys.loaded
    assert len(provider.requests) >= 6  # at least three refreshes
