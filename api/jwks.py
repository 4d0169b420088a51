"""Signing keys of the trusted issuers: OIDC discovery, a bounded JWKS fetch and a cache.

Keys only ever come from the issuer's own `jwks_uri`, never from a token (no `jku`, `x5u`, `jwk`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from ipaddress import ip_address
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey

log = logging.getLogger(__name__)

_DISCOVERY = "/.well-known/openid-configuration"

# Symmetric ("oct") keys are never trusted from a JWKS: HS256 with a published key is a forgery.
_ASYMMETRIC = (ECKey, RSAKey, OKPKey)

# The longest a request waits on the provider for a key it does not know (issue 18: 2 s).
UNKNOWN_KID_WAIT = 2.0


class KeySource(Protocol):
    """What the token validator needs from one trusted issuer."""

    @property
    def issuer(self) -> str: ...

    @property
    def loaded(self) -> bool: ...

    async def key_for(self, kid: str) -> Key | None: ...


def allowed_url(url: str) -> bool:
    """HTTPS, or plain http to a loopback address (tests and local development only)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def parse_jwks(document: Mapping[str, Any]) -> dict[str, Key]:
    """Public signing keys by `kid`. RFC 7517 section 5: keys we do not understand are skipped."""
    keys: dict[str, Key] = {}
    for entry in document.get("keys", ()):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or "d" in entry:
            continue  # a token must name its key; a private key here is a provider bug
        try:
            key = KeySet.import_key_set({"keys": [entry]}).keys[0]
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, _ASYMMETRIC):
            keys[kid] = key
    return keys


class StaticKeys:
    """An in-process key set (the development issuer, tests): nothing is fetched."""

    def __init__(self, issuer: str, jwks: Mapping[str, Any]) -> None:
        self._issuer = issuer
        self._keys = parse_jwks(jwks)

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    async def key_for(self, kid: str) -> Key | None:
        return self._keys.get(kid)


class IssuerKeys:
    """The cached JWKS of one trusted issuer, found through its discovery document."""

    def __init__(
        self,
        issuer: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 3.0,
        max_bytes: int = 64 * 1024,
        cooldown: float = 30.0,
        unknown_kid_wait: float = UNKNOWN_KID_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not allowed_url(issuer):
            raise ValueError("issuer must be an https URL (or http on loopback)")
        self._issuer = issuer
        self._client = httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
        )
        self._max_bytes = max_bytes
        # httpx's timeout bounds each read, not a whole fetch: a provider that trickles a byte
        # at a time would hold the lock (and every request with an unknown kid) for minutes.
        self._deadline = 2 * timeout
        self._cooldown = cooldown
        self._unknown_kid_wait = unknown_kid_wait
        self._clock = clock
        self._keys: dict[str, Key] = {}
        self._loaded = False
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def loaded(self) -> bool:
        """True once keys were loaded at least once (readiness)."""
        return self._loaded

    async def key_for(self, kid: str) -> Key | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        # An unknown kid may be a rotation: refetch, but at most once per cooldown, so a stream
        # of made-up kids cannot turn us into a load generator against the provider. The request
        # waits `unknown_kid_wait` seconds at most, for the lock (a refresh may be under way)
        # and the fetch together: a slow provider makes a token with a new key a prompt 401,
        # never a request held for the whole fetch.
        with contextlib.suppress(TimeoutError):  # a refresh that failed logs once, itself
            async with asyncio.timeout(self._unknown_kid_wait), self._lock:
                if kid not in self._keys and self._may_refetch():
                    await self._refresh_locked()
        return self._keys.get(kid)

    async def refresh(self) -> bool:
        """Fetch discovery and JWKS again; on any failure keep the last good keys."""
        async with self._lock:
            return await self._refresh_locked()

    async def run_refresh_loop(self, interval: float) -> None:
        """Refresh every `interval` seconds (sooner until keys first load). Cancel to stop."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval if self._loaded else min(interval, 5.0))

    async def aclose(self) -> None:
        await self._client.aclose()

    def _may_refetch(self) -> bool:
        return self._last_attempt is None or self._clock() - self._last_attempt >= self._cooldown

    async def _refresh_locked(self) -> bool:
        self._last_attempt = self._clock()
        try:
            async with asyncio.timeout(self._deadline):
                config = await self._get_json(self._issuer.rstrip("/") + _DISCOVERY)
                # OpenID Connect Discovery 1.0 section 4.3: "The issuer value returned MUST be
                # identical to the Issuer URL that was used as the prefix to /.well-known/..."
                if config.get("issuer") != self._issuer:
                    raise ValueError("discovery issuer mismatch")
                jwks_uri = config.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not allowed_url(jwks_uri):
                    raise ValueError("jwks_uri missing or not https")
                keys = parse_jwks(await self._get_json(jwks_uri))
            if not keys:
                raise ValueError("no usable signing keys")
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            httpx.StreamError,
            ValueError,
            TimeoutError,
        ) as error:
            # Never the body: log the issuer and the exception type only.
            log.warning("jwks refresh failed for %s: %s", self._issuer, type(error).__name__)
            return False
        self._keys = keys
        self._loaded = True
        return True

    async def _get_json(self, url: str) -> dict[str, Any]:
        async with self._client.stream("GET", url, headers={"accept": "application/json"}) as resp:
            if resp.status_code != 200:
                raise ValueError("unexpected status")
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise ValueError("response too large")
        document = orjson.loads(body)  # orjson.JSONDecodeError is a ValueError
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document
