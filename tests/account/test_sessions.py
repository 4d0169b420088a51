"""Server-side sessions: hashed ids, sealed contents, expiry, and the cookie's flags."""

from __future__ import annotations

import hashlib
import time

import asyncpg
import httpx
from starlette.applications import Starlette

from api.account.sessions import SessionData, SessionStore, seal, unseal
from api.devissuer import DevIssuer
from api.settings import Settings

from .conftest import COOKIE, Person, sign_in


def store_of(app: Starlette) -> SessionStore:
    settings: Settings = app.state.settings
    return SessionStore(app.state.services.db, settings.secret_key, settings.account_session_ttl)


async def test_the_table_holds_a_hash_of_the_id_and_a_sealed_blob(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    owner_db: asyncpg.Pool,
) -> None:
    token = await sign_in(account_app, browser, issuer, person.handle)
    sid = browser.cookies[COOKIE]
    row = await owner_db.fetchrow(
        "SELECT * FROM account_sessions WHERE id_hash = $1", hashlib.sha256(sid.encode()).digest()
    )
    assert row is not None and row["signed_in"]
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    for secret in (sid, token, person.handle, token.split(".")[1]):
        assert secret.encode() not in stored


def test_a_sealed_session_opens_only_with_its_own_id_and_key() -> None:
    key = b"k" * 48
    blob = seal(key, "a" * 43, SessionData(access_token="tok", sub="s"))
    opened = unseal(key, "a" * 43, blob)
    assert opened is not None and opened.access_token == "tok"
    assert unseal(key, "b" * 43, blob) is None  # another row's id
    assert unseal(b"x" * 48, "a" * 43, blob) is None  # another deployment's key
    assert unseal(key, "a" * 43, blob[:-1] + bytes([blob[-1] ^ 1])) is None  # altered


async def test_an_expired_or_unknown_session_is_no_session(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    sid = browser.cookies[COOKIE]
    store = store_of(account_app)
    assert await store.load(sid) is not None
    assert await store.load("x" * 43) is None
    assert await store.load("not a session id") is None
    await owner_db.execute(
        "UPDATE account_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1",
        hashlib.sha256(sid.encode()).digest(),
    )
    assert await store.load(sid) is None
    r = await browser.get("/account")
    assert r.status_code == 200 and "Sign in" in r.text and person.marker not in r.text


async def test_idle_expiry_never_passes_the_tokens_end(
    account_app: Starlette, owner_db: asyncpg.Pool
) -> None:
    store = store_of(account_app)
    ends = time.time() + 5
    session = await store.sign_in(None, SessionData(access_token="t"), ends)
    row = await owner_db.fetchrow(
        "SELECT extract(epoch FROM expires_at) AS idle, extract(epoch FROM ends_at) AS ends "
        "FROM account_sessions WHERE id_hash = $1",
        hashlib.sha256(session.sid.encode()).digest(),
    )
    assert row is not None
    assert abs(float(row["ends"]) - ends) < 1 and float(row["idle"]) <= float(row["ends"])
    await store.load(session.sid)  # a use moves the idle expiry, not past the end
    row2 = await owner_db.fetchrow(
        "SELECT expires_at <= ends_at AS bounded FROM account_sessions WHERE id_hash = $1",
        hashlib.sha256(session.sid.encode()).digest(),
    )
    assert row2 is not None and row2["bounded"]


async def test_the_cookie_on_a_loopback_host(browser: httpx.AsyncClient) -> None:
    r = await browser.get("/account/demo")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= flags
    assert "secure" not in flags  # browsers serve http://127.0.0.1 without TLS


async def test_the_cookie_anywhere_else_is_secure_and_host_only(account_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=account_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://dsar.example") as client:
        r = await client.get("/account/demo")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-dsar_account=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= flags
    assert not any(f.startswith("domain=") for f in flags)
