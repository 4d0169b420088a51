"""Server-side sessions of the account page: the browser holds a random id and nothing else.

Following the OWASP Session Management Cheat Sheet: ids of 256 bits from `secrets`, stored only
as their SHA-256; a new id at every sign-in (no session fixation); idle and absolute expiry
enforced here, on the server; the cookie HttpOnly, SameSite=Lax, and Secure with the `__Host-`
prefix everywhere but on a loopback host, where browsers serve plain HTTP.

What a session holds (tokens, CSRF token, a login in progress) is sealed with AES-256-GCM under
a key derived from the session id and the deployment secret, so neither a copy of the table nor
the secret alone opens it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

from stores.scope import Scope, scoped

# A login must finish (provider round trip) within this many seconds of starting.
LOGIN_WINDOW = 10 * 60
# However long an access token lives, a session ends this long after its sign-in at the latest.
ABSOLUTE_TTL = 12 * 3600
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_SID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


@dataclass(slots=True)
class SessionData:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # authlib's state data for a login in progress: state -> redirect URI, PKCE verifier, nonce.
    oauth: dict[str, Any] = field(default_factory=dict)
    access_token: str | None = None
    sub: str | None = None
    # When the last sign-in that was asked for as a step-up finished (to stop a loop).
    stepped_up_at: float | None = None
    # A login in progress: whether it is a step-up, where to go when it finishes, and an export
    # or a grant to a partner asked for before it.
    step_up: bool = False
    next: str | None = None
    pending_export: dict[str, Any] | None = None
    pending_grant: dict[str, Any] | None = None
    # A confirmation for the partner section, shown once by the next page (post/redirect/get).
    partner_notice: str | None = None
    # A form sent after the session had ended ({"form": "export" | "grant", "fields": …}): not
    # acted on (its CSRF token no longer held), but shown filled in again after the sign-in.
    draft: dict[str, Any] | None = None


@dataclass(slots=True)
class Session:
    sid: str
    data: SessionData
    is_new: bool = False

    @property
    def signed_in(self) -> bool:
        return self.data.access_token is not None


def _id_hash(sid: str) -> bytes:
    return hashlib.sha256(sid.encode()).digest()


def _key(secret: bytes, sid: str) -> bytes:
    return hmac.new(secret, b"dsar-account-session\x00" + sid.encode(), hashlib.sha256).digest()


def seal(secret: bytes, sid: str, data: SessionData) -> bytes:
    nonce = os.urandom(12)
    # The id hash is the associated data: a blob moved to another row does not open.
    return nonce + AESGCM(_key(secret, sid)).encrypt(
        nonce, orjson.dumps(asdict(data)), _id_hash(sid)
    )


def unseal(secret: bytes, sid: str, blob: bytes) -> SessionData | None:
    try:
        raw = AESGCM(_key(secret, sid)).decrypt(blob[:12], blob[12:], _id_hash(sid))
        return SessionData(**orjson.loads(raw))
    except (InvalidTag, ValueError, TypeError):
        return None  # another secret key (rotated), or a row altered behind our back


class SessionStore:
    def __init__(self, db: asyncpg.Pool, secret: bytes, idle_ttl: int) -> None:
        self._db = db
        self._secret = secret
        self._idle = idle_ttl

    async def load(self, sid: str | None) -> Session | None:
        """The live session of this id, its idle expiry moved forward; None when there is none."""
        if sid is None or not _SID.match(sid):
            return None
        id_hash = _id_hash(sid)
        async with scoped(self._db, session=id_hash) as conn:
            row = await conn.fetchrow(
                """UPDATE account_sessions
                   SET seen_at = now(),
                       expires_at = least(ends_at, now() + make_interval(secs => $2))
                   WHERE id_hash = $1 AND expires_at > now()
                   RETURNING sealed, signed_in""",
                id_hash,
                float(self._idle),
            )
        if row is None:
            return None
        data = unseal(self._secret, sid, row["sealed"])
        return None if data is None else Session(sid, data)

    async def start(self) -> Session:
        """A new anonymous session, for a login in progress; it lives `LOGIN_WINDOW` seconds."""
        session = Session(secrets.token_urlsafe(32), SessionData(), is_new=True)
        await self._insert(session, LOGIN_WINDOW)
        return session

    async def sign_in(self, previous: Session | None, data: SessionData, ends_at: float) -> Session:
        """A signed-in session under a new id (the old one is deleted): a session id that was
        known before the login is worth nothing after it."""
        if previous is not None:
            await self.delete(previous)
        session = Session(secrets.token_urlsafe(32), data, is_new=True)
        await self._insert(session, ABSOLUTE_TTL, ends_at)
        return session

    async def save(self, session: Session) -> None:
        id_hash = _id_hash(session.sid)
        async with scoped(self._db, session=id_hash) as conn:
            await conn.execute(
                "UPDATE account_sessions SET sealed = $2, signed_in = $3 WHERE id_hash = $1",
                id_hash,
                seal(self._secret, session.sid, session.data),
                session.signed_in,
            )

    async def delete(self, session: Session) -> None:
        id_hash = _id_hash(session.sid)
        async with scoped(self._db, session=id_hash) as conn:
            await conn.execute("DELETE FROM account_sessions WHERE id_hash = $1", id_hash)

    async def _insert(
        self, session: Session, lifetime: float, ends_at: float | None = None
    ) -> None:
        """The session ends `lifetime` seconds from now by the database's clock (which judges
        every expiry), or at `ends_at` (the token's own expiry, by its issuer) if sooner."""
        # The expired sessions of everyone go first (the sweep); then this one.
        async with scoped(self._db, session=_id_hash(session.sid), scope=Scope.SWEEP) as conn:
            await conn.execute("DELETE FROM account_sessions WHERE expires_at <= now()")
            await conn.execute(
                """WITH ends AS (
                       SELECT least(now() + make_interval(secs => $4),
                                    coalesce(to_timestamp($6), 'infinity')) AS at)
                   INSERT INTO account_sessions (id_hash, sealed, signed_in, expires_at, ends_at)
                   SELECT $1, $2, $3, least(ends.at, now() + make_interval(secs => $5)), ends.at
                   FROM ends""",
                _id_hash(session.sid),
                seal(self._secret, session.sid, session.data),
                session.signed_in,
                float(lifetime),
                float(self._idle),
                None if ends_at is None else float(ends_at),
            )


def secure_cookie(request: Request) -> bool:
    """Secure everywhere but on a loopback host (plain HTTP during development)."""
    return (request.url.hostname or "") not in LOOPBACK_HOSTS


def cookie_name(request: Request) -> str:
    # The __Host- prefix makes the browser refuse the cookie unless Secure, Path=/, no Domain.
    return "__Host-dsar_account" if secure_cookie(request) else "dsar_account"


def session_id(request: Request) -> str | None:
    return request.cookies.get(cookie_name(request))


def set_cookie(response: Response, request: Request, session: Session) -> None:
    # No Max-Age: the cookie ends with the browser; the server ends the session sooner.
    response.set_cookie(
        cookie_name(request),
        session.sid,
        path="/",
        secure=secure_cookie(request),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        cookie_name(request),
        path="/",
        secure=secure_cookie(request),
        httponly=True,
        samesite="lax",
    )
