"""Validation of RFC 9068 JWT access tokens from the trusted issuers.

The order below held against every forged token tried (see FINDINGS.md, "Tokens"): cheap shape
checks, signature with a key of the issuer's own JWKS and an algorithm allowlist, then the header
`typ`, then the claims. A failure is an `InvalidToken` with a short fixed reason code, never with
any part of the token.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import ClaimError, JoseError, SecurityWarning
from joserfc.jwt import JWTClaimsRegistry

from api.jwks import KeySource
from api.token_cache import Refused, TokenCache, Verified

Claims = dict[str, Any]

MAX_TOKEN_LENGTH = 4096
DEFAULT_ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA", "Ed25519")

# RFC 9068 section 4: "Resource servers MUST verify that the typ header value is "at+jwt" or
# "application/at+jwt" and reject tokens carrying any other value." (An ID token says "JWT".)
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})

# Headers that would let the token choose its own key or add rules we do not implement
# (RFC 7515 sections 4.1.2-4.1.6 and 4.1.11). We never follow them; a token carrying one is refused.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})

# RFC 9068 section 2.2: iss, exp, aud, sub, client_id, iat and jti are REQUIRED.
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")


class InvalidToken(Exception):
    """An unacceptable access token. `code` is a fixed reason for logs, never token text;
    `dpop` when the challenge is DPoP's (RFC 9449 section 7.1: the token came with the DPoP
    scheme, or is bound to a key)."""

    def __init__(self, code: str, *, dpop: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.dpop = dpop


def _segment_json(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise InvalidToken("malformed") from error
    if not isinstance(value, dict):
        raise InvalidToken("malformed")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class TokenValidator:
    """Checks a bearer token against several trusted issuers, each with its own key set."""

    def __init__(
        self,
        issuers: Mapping[str, KeySource],
        audience: str,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        leeway: int = 60,
        now: Callable[[], int] | None = None,
        cache: TokenCache | None = None,
    ) -> None:
        """`cache`: verified tokens remembered until their exp (api/token_cache.py)."""
        if not issuers or not audience:
            raise ValueError("at least one issuer and an audience are required")
        if any(name != source.issuer for name, source in issuers.items()):
            raise ValueError("each key set must be filed under its own issuer")
        self._issuers = dict(issuers)
        self._audience = audience
        self._algorithms = tuple(algorithms)
        if {"none"} & {a.lower() for a in self._algorithms} or any(
            a.startswith("HS") for a in self._algorithms
        ):
            raise ValueError("only asymmetric algorithms may be allowed")
        self._leeway = leeway
        self._now = now
        self._cache = cache

    @property
    def ready(self) -> bool:
        """True when every trusted issuer's keys were loaded at least once."""
        return all(keys.loaded for keys in self._issuers.values())

    async def validate(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken("malformed")
        if self._cache is None:
            return (await self._verify(token)).claims
        digest = self._cache.digest(token)
        now = self._clock()
        entry = self._cache.get(digest, now)
        if isinstance(entry, Refused):
            raise InvalidToken(entry.code)
        if entry is not None:
            if await self._issuers[entry.issuer].key_for(entry.kid) is entry.key:
                return dict(entry.claims)
            self._cache.forget(digest)  # its key was withdrawn or replaced: check again
        try:
            verified = await self._verify(token)
        except InvalidToken as error:
            self._cache.refused(digest, error.code, now)
            raise
        self._cache.verified(digest, verified, now)
        return dict(verified.claims)

    def _clock(self) -> float:
        return self._now() if self._now is not None else time.time()

    async def _verify(self, token: str) -> Verified:
        segments = token.split(".")
        if len(segments) != 3 or not all(segments):
            raise InvalidToken("malformed")  # five segments would be a JWE; we accept JWS only
        header = _segment_json(segments[0])
        if FORBIDDEN_HEADERS & header.keys():
            raise InvalidToken("forbidden_header")
        if header.get("alg") not in self._algorithms:
            raise InvalidToken("algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("kid")

        # The unverified `iss` only chooses whose keys to try; it is checked again once verified.
        issuer = _segment_json(segments[1]).get("iss")
        source = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if source is None:
            raise InvalidToken("issuer")
        key = await source.key_for(kid)
        if key is None:
            raise InvalidToken("unknown_key")
        key_alg = key.get("alg")
        if key_alg is not None and key_alg != header["alg"]:
            raise InvalidToken("algorithm")

        try:
            with warnings.catch_warnings():
                # RFC 9864 deprecates "EdDSA" for "Ed25519"; providers still send it, and a
                # warning per request would only flood the log.
                warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
                verified = jwt.decode(token, key, algorithms=self._algorithms)
        except (JoseError, ValueError, TypeError) as error:
            raise InvalidToken("signature") from error
        if verified.header.get("typ") not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("type")
        claims = verified.claims
        self._check_claims(claims, source.issuer)
        return Verified(claims, source.issuer, kid, key, float(claims["exp"]))

    def _check_claims(self, claims: Claims, issuer: str) -> None:
        registry = JWTClaimsRegistry(
            now=self._now,
            leeway=self._leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": self._audience},
            sub={"essential": True},
            client_id={"essential": True},
            jti={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ClaimError as error:
            # e.g. "expired_token:exp", "missing_claim:jti": names from our own fixed list.
            raise InvalidToken(f"{error.error}:{error.claim}") from error
        if claims.get("iss") != issuer:
            raise InvalidToken("invalid_claim:iss")
        for name in ("sub", "client_id", "jti"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise InvalidToken(f"invalid_claim:{name}")
        for name in ("exp", "iat"):
            if not _is_number(claims.get(name)):
                raise InvalidToken(f"invalid_claim:{name}")
        if "scope" in claims and not isinstance(claims["scope"], str):
            raise InvalidToken("invalid_claim:scope")
        if "acr" in claims and not isinstance(claims["acr"], str):
            raise InvalidToken("invalid_claim:acr")
        if "auth_time" in claims and not _is_number(claims["auth_time"]):
            raise InvalidToken("invalid_claim:auth_time")
        if "cnf" in claims and not isinstance(claims["cnf"], dict):
            raise InvalidToken("invalid_claim:cnf")
