"""Tokens made by hand: good ones with our own keys, and forgeries."""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, Key
from joserfc.jws import JWSRegistry

from api.jwks import StaticKeys

ISSUER = "https://issuer.test"
AUDIENCE = "https://dsar.test/api"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(json.dumps(value).encode())


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a real token, to copy into a forgery."""
    head, body, _ = token.split(".")
    return _decode(head), _decode(body)


def _decode(part: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def new_key(kid: str | None = None) -> ECKey:
    key = ECKey.generate_key("P-256", {"alg": "ES256", "use": "sig"}, auto_kid=kid is None)
    if kid is not None:
        key = ECKey.import_key({**key.as_dict(private=True), "kid": kid})
    return key


def public_jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [{**k.as_dict(private=False), "use": "sig"} for k in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    """A customer access token's claims; `name=None` drops the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "client_id": "dsar-account",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 300,
        "scope": "openid dsar:self",
        "acr": "urn:dsar:acr:strong",
        "auth_time": now,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, payload: dict[str, Any], alg: str = "ES256", **header: Any) -> str:
    head = {"alg": alg, "typ": "at+jwt", "kid": key.kid, **header}
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, payload, key, algorithms=[alg], default_type=None)


def sign_raw(key: Key, header: dict[str, Any], payload: dict[str, Any] | bytes) -> str:
    """Sign anything, bypassing every check joserfc makes when it builds a token."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{segment(header)}.{b64(body)}".encode()
    signature = JWSRegistry.algorithms[header["alg"]].sign(signing_input, key)
    return f"{signing_input.decode()}.{b64(signature)}"


def sign_hmac(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{segment(header)}.{segment(payload)}".encode()
    return f"{signing_input.decode()}.{b64(hmac.digest(secret, signing_input, 'sha256'))}"


def trusted(key: Key, issuer: str = ISSUER) -> StaticKeys:
    return StaticKeys(issuer, public_jwks(key))
