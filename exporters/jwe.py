"""A bundle encrypted to its recipient's public key, as a JWE (RFC 7516) streamed as it is made.

Compact serialization puts the authentication tag last, so the ciphertext can leave chunk by
chunk: `BASE64URL(header).BASE64URL(encrypted key).BASE64URL(iv).BASE64URL(ciphertext).
BASE64URL(tag)`. Key management is RSA-OAEP-256 (RFC 7518 section 4.3), content encryption
A256GCM (section 5.3). JOSE libraries (joserfc, jwcrypto) decrypt the result in one call; they
encrypt only whole payloads in memory, hence this streamed writer over `cryptography`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MEDIA_TYPE = "application/jose"
MIN_RSA_BITS = 2048


class UnusableKey(ValueError):
    """A recipient key we cannot encrypt to; the message says why, with no key material."""


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _uint(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def rsa_public_key(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey:
    """The RSA public key of a JWK (RFC 7518 section 6.3.1), checked for use here."""
    if jwk.get("kty") != "RSA":
        raise UnusableKey("encrypted delivery needs an RSA key (kty RSA, for RSA-OAEP-256)")
    if "d" in jwk:
        raise UnusableKey("give the public key only")
    if jwk.get("use", "enc") != "enc" or jwk.get("alg", "RSA-OAEP-256") != "RSA-OAEP-256":
        raise UnusableKey("the key must be for encryption with RSA-OAEP-256")
    try:
        key = rsa.RSAPublicNumbers(_uint(str(jwk["e"])), _uint(str(jwk["n"]))).public_key()
    except (KeyError, ValueError) as exc:
        raise UnusableKey("not a valid RSA public key") from exc
    if key.key_size < MIN_RSA_BITS:
        raise UnusableKey(f"the RSA key must have at least {MIN_RSA_BITS} bits")
    return key


async def encrypt_stream(
    chunks: AsyncGenerator[bytes, None], jwk: Mapping[str, Any], content_type: str
) -> AsyncGenerator[bytes, None]:
    """`chunks`, encrypted to `jwk`, as a compact JWE. `cty` names what is inside."""
    key = rsa_public_key(jwk)
    header: dict[str, str] = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": content_type}
    if "kid" in jwk:
        header["kid"] = str(jwk["kid"])
    protected = _b64(orjson.dumps(header))
    cek = os.urandom(32)
    iv = os.urandom(12)
    wrapped = key.encrypt(
        cek,
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )
    encryptor = Cipher(algorithms.AES(cek), modes.GCM(iv)).encryptor()
    # RFC 7516 section 5.1 step 14: the AAD is the ASCII of the encoded protected header.
    encryptor.authenticate_additional_data(protected)
    yield protected + b"." + _b64(wrapped) + b"." + _b64(iv) + b"."
    carry = b""  # base64 works on 3-byte groups: the remainder waits for the next chunk
    async with aclosing(chunks):
        async for chunk in chunks:
            data = carry + encryptor.update(chunk)
            cut = len(data) - len(data) % 3
            carry = data[cut:]
            if cut:
                yield _b64(data[:cut])
    data = carry + encryptor.finalize()
    yield _b64(data) + b"." + _b64(encryptor.tag)
