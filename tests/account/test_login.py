"""Signing in (the demo sign-in; the provider's flow is in tests/browser), CSRF and signing out."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from api.account.sessions import SessionStore
from api.app import create_app
from api.devissuer import DevIssuer
from api.settings import Settings
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import build_subject

from .conftest import COOKIE, Person, csrf_of, form, sign_in


async def demo_sign_in(browser: httpx.AsyncClient, handle: str) -> httpx.Response:
    page = await browser.get("/account/demo")
    assert page.status_code == 200
    return await browser.post("/account/demo", **form(csrf=csrf_of(page.text), subject=handle))


async def test_the_demo_sign_in_shows_the_seeded_person(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/account/demo")
    assert "Demo sign-in" in page.text and "Demo mode" in page.text
    before = browser.cookies[COOKIE]
    r = await browser.post("/account/demo", **form(csrf=csrf_of(page.text), subject="alice"))
    assert r.status_code == 303 and r.headers["location"] == "/account"
    after = browser.cookies[COOKIE]
    assert after != before  # a new session id at sign-in: no session fixation
    alice = build_subject("alice", full=True, sensitive=True).rows["profile"][0]
    html = (await browser.get("/account")).text
    assert alice["email"] in html and alice["first_name"] in html
    # The id used before the sign-in is worth nothing now.
    browser.cookies.set(COOKIE, before, domain="127.0.0.1", path="/")
    assert alice["email"] not in (await browser.get("/account")).text


async def test_no_token_reaches_the_browser(browser: httpx.AsyncClient) -> None:
    r = await demo_sign_in(browser, "bob")
    assert r.status_code == 303
    home = await browser.get("/account")
    asked = await browser.post(
        "/account/exports", **form(csrf=csrf_of(home.text), format="json", purpose="access")
    )
    pages = [home, asked] + [
        await browser.get(p) for p in ("/account/data/web_analytics", asked.headers["location"])
    ]
    cookies = [c for p in (r, *pages) for c in p.headers.get_list("set-cookie")]
    cookies += [f"{k}={v}" for k, v in browser.cookies.items()]
    for text in [p.text for p in pages] + cookies + [str(p.headers) for p in pages]:
        assert "eyJ" not in text  # the start of every JWT (base64 of '{"')
    assert list(browser.cookies.keys()) == [COOKIE]
    assert len(browser.cookies[COOKIE]) == 43


async def test_the_demo_sign_in_refuses_without_its_csrf_token(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/account/demo")
    token = csrf_of(page.text)
    for fields in ({"subject": "alice"}, {"subject": "alice", "csrf": token + "x"}):
        r = await browser.post("/account/demo", **form(**fields))
        assert r.status_code == 403 and "This form has expired" in r.text
    json_body = await browser.post("/account/demo", json={"csrf": token, "subject": "alice"})
    assert json_body.status_code == 403
    other_site = await browser.post(
        "/account/demo",
        data={"csrf": token, "subject": "alice"},
        headers={"origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert (await browser.get("/account")).text.count("Sign in") >= 1
    unknown = await browser.post("/account/demo", **form(csrf=token, subject="mallory"))
    assert unknown.status_code == 400


async def test_sign_out_ends_the_session(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    page = await browser.get("/account")
    assert person.marker in page.text
    sid = browser.cookies[COOKIE]

    for refused in (
        await browser.post("/account/logout", **form(csrf="wrong")),
        await browser.post("/account/logout", **form()),
    ):
        assert refused.status_code == 403
    assert person.marker in (await browser.get("/account")).text  # still signed in

    r = await browser.post("/account/logout", **form(csrf=csrf_of(page.text)))
    assert r.status_code == 303 and r.headers["location"] == "/account/signed-out"
    assert f'{COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert not await owner_db.fetchval(
        "SELECT count(*) FROM account_sessions WHERE id_hash = $1",
        hashlib.sha256(sid.encode()).digest(),
    )
    signed_out = await browser.get("/account/signed-out")
    assert "You are signed out" in signed_out.text
    # Even with the old cookie put back, the page is closed.
    browser.cookies.set(COOKIE, sid, domain="127.0.0.1", path="/")
    again = await browser.get("/account")
    assert "Sign in" in again.text and person.marker not in again.text
    assert (await browser.get("/account/data/profile")).headers["location"] == "/account"


async def test_an_expired_token_ends_the_session(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer, person: Person
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    sid = browser.cookies[COOKIE]
    expired = issuer.mint("customer", person.handle, ttl=-3600)
    state = account_app.state
    sessions = SessionStore(state.services.db, state.settings.secret_key, 1800)
    session = await sessions.load(sid)
    assert session is not None
    session.data.access_token = expired
    await sessions.save(session)
    r = await browser.get("/account")
    assert "Your session has ended" in r.text
    assert await sessions.load(sid) is None


@pytest.fixture
async def plain_app(
    settings: Settings, deployment: Deployment, stores: Stores
) -> AsyncIterator[Starlette]:
    """No development issuer and no provider client: nobody can sign in."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_without_the_dev_issuer_there_is_no_demo(plain_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.get("/account/demo")).status_code == 404
        assert (await client.post("/account/demo", data={"subject": "alice"})).status_code == 404
        page = await client.get("/account")
        assert "Demo" not in page.text and "not available" in page.text
        assert (await client.get("/account/login")).status_code == 503
