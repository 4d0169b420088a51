"""The built-in development issuer, for `make serve` and demos only.

It mints tokens of exactly the production shape (RFC 9068, ES256, `typ: at+jwt`) with one key kept
under the dsar home folder, and is trusted only when `DSAR_DEV_ISSUER` is exactly "1".
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
from joserfc import jwt
from joserfc.jwk import ECKey

from api.jwks import StaticKeys
from domain.principals import SCOPE_CUSTOMER, SCOPE_PARTNER, SCOPE_STAFF, SCOPE_SUPPORT

KEY_FILE = "dev-issuer-es256.jwk.json"
STRONG_ACR = "urn:dsar:acr:strong"

Kind = Literal["customer", "partner", "support", "staff"]

# The OAuth client each kind of token is issued to; a partner's client id is its own name.
_CLIENTS: dict[str, str] = {
    "customer": "dsar-dev-account",
    "support": "dsar-dev-support",
    "staff": "dsar-dev-privacy",
}
_SCOPES: dict[str, str] = {
    "customer": SCOPE_CUSTOMER,
    "partner": SCOPE_PARTNER,
    "support": SCOPE_SUPPORT,
    "staff": SCOPE_STAFF,
}


def enabled(env: Mapping[str, str]) -> bool:
    """Only the exact value "1" turns the development issuer on; "true", " 1" or "yes" do not."""
    return env.get("DSAR_DEV_ISSUER") == "1"


def _load_or_create_key(home: Path) -> ECKey:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / KEY_FILE
    try:
        return ECKey.import_key(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        pass
    key = ECKey.generate_key("P-256", {"alg": "ES256", "use": "sig"}, private=True, auto_kid=True)
    # O_EXCL: if another process created the key meanwhile, fail rather than overwrite it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(key.as_dict(private=True)))
    return key


class DevIssuer:
    def __init__(self, home: Path, issuer_url: str, audience: str) -> None:
        self.issuer = issuer_url
        self.audience = audience
        self._key = _load_or_create_key(home)

    @property
    def kid(self) -> str:
        return str(self._key.kid)

    def mint(
        self,
        kind: Kind,
        name: str,
        ttl: int = 3600,
        acr: str | None = STRONG_ACR,
        auth_time: int | None = None,
        cnf: dict[str, str] | None = None,
    ) -> str:
        """`cnf` binds the token to a key (RFC 7800; `{"jkt": …}` for DPoP, RFC 9449)."""
        if kind not in _SCOPES or not name:
            raise ValueError("unknown token kind or empty name")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": name,
            "client_id": _CLIENTS.get(kind, name),
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + ttl,
            "scope": _SCOPES[kind],
        }
        if kind != "partner":  # a client-credentials token carries no login
            if acr is not None:
                claims["acr"] = acr
            claims["auth_time"] = now if auth_time is None else auth_time
        if cnf is not None:
            claims["cnf"] = cnf
        header = {"alg": "ES256", "typ": "at+jwt", "kid": self.kid}
        return jwt.encode(header, claims, self._key, algorithms=["ES256"])

    def jwks(self) -> dict[str, Any]:
        """The public key only, as a JWKS document."""
        public = self._key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "alg": "ES256", "use": "sig"}]}

    def key_set(self) -> StaticKeys:
        """The in-process key set to trust this issuer with (nothing fetched over HTTP)."""
        return StaticKeys(self.issuer, self.jwks())
