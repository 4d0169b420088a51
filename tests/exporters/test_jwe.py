"""Bundles encrypted to a partner's key: a JWE any JOSE library opens, and only with that key."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from exporters.jwe import UnusableKey, encrypt_stream, rsa_public_key

# What a partner's integrator writes to open a bundle: joserfc, with these two algorithms.
REGISTRY = jwe.JWERegistry(algorithms=["RSA-OAEP-256", "A256GCM"])


async def chunks_of(data: bytes, size: int) -> AsyncGenerator[bytes, None]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def encrypted(data: bytes, size: int, jwk: dict[str, Any]) -> bytes:
    out = b""
    async for part in encrypt_stream(chunks_of(data, size), jwk, "application/zip"):
        out += part
    return out


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "partner-key", "use": "enc"})


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000, 1 << 20])
async def test_joserfc_decrypts_what_was_streamed(key: RSAKey, size: int) -> None:
    data = os.urandom(5000) + b"PK\x05\x06 the end"
    token = await encrypted(data, size, key.as_dict(private=False))
    assert token.count(b".") == 4
    opened = jwe.decrypt_compact(token, key, registry=REGISTRY)
    assert opened.plaintext == data
    assert opened.protected == {
        "alg": "RSA-OAEP-256",
        "enc": "A256GCM",
        "cty": "application/zip",
        "kid": "partner-key",
    }


async def test_another_key_or_a_changed_byte_opens_nothing(key: RSAKey) -> None:
    token = await encrypted(b"personal data", 4, key.as_dict(private=False))
    with pytest.raises(JoseError):
        jwe.decrypt_compact(token, RSAKey.generate_key(2048), registry=REGISTRY)
    head, tail = token[:-30], token[-30:]
    flipped = head + (b"A" if tail[:1] != b"A" else b"B") + tail[1:]
    with pytest.raises((JoseError, ValueError)):
        jwe.decrypt_compact(flipped, key, registry=REGISTRY)


def short_key() -> dict[str, str]:
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()  # noqa: S505  # the weak key under test

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()

    return {"kty": "RSA", "n": b64(numbers.n).rstrip("="), "e": b64(numbers.e).rstrip("=")}


def test_only_usable_public_rsa_keys_are_taken(key: RSAKey) -> None:
    rsa_public_key(key.as_dict(private=False))
    cases = {
        "an EC key": ECKey.generate_key("P-256").as_dict(private=False),
        "a private key": key.as_dict(private=True),
        "a short key": short_key(),
        "a signing key": {**key.as_dict(private=False), "use": "sig"},
        "no modulus": {"kty": "RSA", "e": "AQAB"},
    }
    for jwk in cases.values():
        with pytest.raises(UnusableKey):
            rsa_public_key(jwk)
