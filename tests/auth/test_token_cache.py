"""The verified-token cache (api/token_cache.py) behind TokenValidator: a token is verified once
until its exp, a refusal is remembered a few seconds at most, a withdrawn key refuses its cached
tokens at once, and the cache stays within its size."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import Key

from api.token_cache import FAILURE_TTL, TokenCache
from api.tokens import InvalidToken, TokenValidator

from .forge import AUDIENCE, ISSUER, claims, new_key, sign


class KeySet:
    """An issuer's key set that can publish and withdraw keys, as a JWKS refresh would."""

    def __init__(self, *keys: Key) -> None:
        self.keys = {k.kid: k for k in keys}

    @property
    def issuer(self) -> str:
        return ISSUER

    @property
    def loaded(self) -> bool:
        return True

    async def key_for(self, kid: str) -> Key | None:
        return self.keys.get(kid)


class Clock:
    def __init__(self) -> None:
        self.now = int(time.time())

    def __call__(self) -> int:
        return self.now


def cached(keys: KeySet, clock: Clock, size: int = 100) -> tuple[TokenValidator, TokenCache]:
    cache = TokenCache(size=size)
    return TokenValidator({ISSUER: keys}, AUDIENCE, now=clock, cache=cache), cache


async def test_a_token_is_verified_once_until_its_exp() -> None:
    key, clock = new_key(), Clock()
    validator, cache = cached(KeySet(key), clock)
    token = sign(key, claims(iat=clock.now, exp=clock.now + 300))
    first = await validator.validate(token)
    again = await validator.validate(token)
    assert first == again and first["sub"] == "alice" and cache.hits == 1
    again["sub"] = "mallory"  # a caller's change does not reach the cache
    assert (await validator.validate(token))["sub"] == "alice"
    # Past its exp (and the leeway) the token is checked again, and refused.
    clock.now += 300 + 61
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    assert caught.value.code == "expired_token:exp"


async def test_a_withdrawn_key_refuses_its_cached_tokens_at_once() -> None:
    key, clock = new_key(), Clock()
    keys = KeySet(key)
    validator, _ = cached(keys, clock)
    token = sign(key, claims(iat=clock.now, exp=clock.now + 3600))
    await validator.validate(token)
    del keys.keys[key.kid]
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    assert caught.value.code == "unknown_key"
    # A different key published under the same kid does not take over the cached verdict.
    impostor = new_key(kid=key.kid)
    keys.keys[key.kid] = impostor
    clock.now += int(FAILURE_TTL) + 1
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    assert caught.value.code == "signature"


async def test_a_refusal_is_remembered_a_few_seconds_at_most() -> None:
    key, clock = new_key(), Clock()
    keys = KeySet()
    validator, cache = cached(keys, clock)
    token = sign(key, claims(iat=clock.now, exp=clock.now + 3600))
    for _ in range(3):
        with pytest.raises(InvalidToken) as caught:
            await validator.validate(token)
        assert caught.value.code == "unknown_key"
    assert cache.hits == 2
    keys.keys[key.kid] = key  # the issuer publishes its new key
    clock.now += int(FAILURE_TTL)
    assert (await validator.validate(token))["sub"] == "alice"


async def test_the_cache_keeps_hashes_within_its_size() -> None:
    key, clock = new_key(), Clock()
    validator, cache = cached(KeySet(key), clock, size=3)
    tokens = [sign(key, claims(iat=clock.now, exp=clock.now + 60, jti=f"t{n}")) for n in range(5)]
    for token in tokens:
        await validator.validate(token)
    assert len(cache) == 3
    assert all(token.encode() not in digest for token in tokens for digest in cache._entries)
