"""Verified access tokens remembered until their `exp`, so a client's second request does not
check the same signature again (issue 19, item 2).

Keyed by the token's SHA-256, never the token; bounded (least recently used goes first). A hit
is served only while the key that verified it is still the one its issuer's key set holds for
its `kid`: a key withdrawn from the issuer's JWKS refuses its tokens at the next request, as
without the cache. A refusal is remembered `FAILURE_TTL` seconds at most (a flood of one bad
token costs one check, a key published a moment later is found soon). Everything after the
signature and the claims is still done per request by the caller: the DPoP proof of a bound
token (api/authn.py `check_binding`), the issuer's role, the subject's lookup.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cachetools import TLRUCache
from joserfc.jwk import Key

SIZE = 4096
FAILURE_TTL = 5.0


@dataclass(frozen=True, slots=True)
class Verified:
    claims: dict[str, Any]
    issuer: str
    kid: str
    key: Key
    until: float  # the token's exp


@dataclass(frozen=True, slots=True)
class Refused:
    code: str
    until: float


class TokenCache:
    def __init__(self, size: int = SIZE, failure_ttl: float = FAILURE_TTL) -> None:
        self.failure_ttl = failure_ttl
        self.hits = 0
        self._now = 0.0  # the caller's clock, as its last call gave it
        # Least recently used first out; an entry lasts until its own `until`.
        self._entries: TLRUCache[bytes, Verified | Refused] = TLRUCache(
            size, ttu=_until, timer=self._clock
        )

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, digest: bytes, now: float) -> Verified | Refused | None:
        self._now = now
        entry = self._entries.get(digest)
        if entry is not None:
            self.hits += 1
        return entry

    def verified(self, digest: bytes, entry: Verified, now: float) -> None:
        self._now = now
        self._entries[digest] = entry

    def refused(self, digest: bytes, code: str, now: float) -> None:
        self._now = now
        self._entries[digest] = Refused(code, now + self.failure_ttl)

    def forget(self, digest: bytes) -> None:
        self._entries.pop(digest, None)

    def _clock(self) -> float:
        return self._now


def _until(_: bytes, entry: Verified | Refused, now: float) -> float:
    return entry.until
