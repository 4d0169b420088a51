"""DPoP proofs (RFC 9449) as a client makes them, for the tests: a key pair and `proof(...)`."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey


class DPoPKey:
    """A client's DPoP key pair (P-256), and the proofs it signs."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def proof(
        self,
        method: str,
        url: str,
        access_token: str | None = None,
        *,
        header: dict[str, Any] | None = None,
        signer: ECKey | None = None,
        **claims: Any,
    ) -> str:
        """A proof for `method url` (bound to `access_token` by `ath` when given). `header` and
        `claims` add or override fields (None removes one); `signer` signs with another key."""
        head: dict[str, Any] = {
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": self.key.as_dict(private=False),
        }
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if access_token is not None:
            body["ath"] = ath(access_token)
        head.update(header or {})
        body.update(claims)
        head = {k: v for k, v in head.items() if v is not None}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(head, body, signer or self.key, algorithms=[head.get("alg", "ES256")])


def ath(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
