"""The account page's test app (development issuer on, for the demo sign-in), a browser-like
client on a loopback host, and signed-in sessions for any subject with real test tokens."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from uuid import uuid4

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from api.account.sessions import SessionData, SessionStore
from api.app import create_app
from api.devissuer import STRONG_ACR, DevIssuer
from api.settings import DEV_ISSUER, Settings
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import DEMO_HANDLES, SubjectData
from tests._factories import insert_marked
from tests._tokens import TEST_ISSUER

COOKIE = "dsar_account"  # on a loopback host; `__Host-dsar_account` elsewhere
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="session")
async def demo_links(stores: Stores, owner_db: asyncpg.Pool) -> None:
    """`make serve` links the demo people to the development issuer; so do these tests."""
    await owner_db.executemany(
        "INSERT INTO identity_links (issuer, sub, subject_id) "
        "SELECT $1, handle, id FROM subjects WHERE handle = $2 ON CONFLICT DO NOTHING",
        [(DEV_ISSUER, h) for h in DEMO_HANDLES],
    )


@pytest.fixture
def account_settings(settings: Settings) -> Settings:
    return replace(settings, dev_issuer=True)


@pytest.fixture
async def account_app(
    account_settings: Settings,
    deployment: Deployment,
    stores: Stores,
    issuer: DevIssuer,
    demo_links: None,
) -> AsyncIterator[Starlette]:
    app = create_app(account_settings, key_sources={TEST_ISSUER: issuer.key_set()})
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def browser(account_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Like a browser on http://127.0.0.1: keeps cookies, does not follow redirects itself."""
    transport = httpx.ASGITransport(app=account_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


@dataclass(frozen=True)
class Person:
    handle: str  # the `sub` of their test login
    marker: str  # in every text value of theirs
    data: SubjectData


@pytest.fixture
async def person(stores: Stores, catalogue: Catalogue) -> Person:
    """A subject of this test only, with a unique marker in every text value."""
    handle, marker = f"acct-{uuid4().hex[:10]}", f"ACC{uuid4().hex[:8]}"
    return Person(handle, marker, await insert_marked(stores, catalogue, handle, marker, 91))


async def sign_in(
    app: Starlette,
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    handle: str,
    *,
    acr: str | None = STRONG_ACR,
    auth_time: int | None = None,
) -> str:
    """A signed-in session for `handle` as the callback leaves it; returns its access token."""
    token = issuer.mint("customer", handle, acr=acr, auth_time=auth_time)
    settings: Settings = app.state.settings
    store = SessionStore(app.state.services.db, settings.secret_key, settings.account_session_ttl)
    session = await store.sign_in(
        None, SessionData(access_token=token, sub=handle), time.time() + 3600
    )
    client.cookies.set(COOKIE, session.sid, domain="127.0.0.1", path="/")
    return token


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def form(**fields: str) -> dict[str, object]:
    return {"data": fields, "headers": {"content-type": "application/x-www-form-urlencoded"}}
