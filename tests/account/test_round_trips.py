"""Leaving and coming back: a step-up says why and keeps the person, a session that ended says
so, a form sent after it ended keeps its choices (and does nothing), and a link that can no
longer serve says so before asking anyone to sign in."""

from __future__ import annotations

import hashlib

import asyncpg
import httpx
from starlette.applications import Starlette

from api.devissuer import DevIssuer

from .conftest import COOKIE, Person, csrf_of, form, sign_in
from .test_downloads import ask, export_id


async def end_session(owner_db: asyncpg.Pool, browser: httpx.AsyncClient) -> None:
    """As 30 idle minutes would: the session's row is past its expiry."""
    sid = browser.cookies.get(COOKIE)
    assert sid
    await owner_db.execute(
        "UPDATE account_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1",
        hashlib.sha256(sid.encode()).digest(),
    )


async def test_the_step_up_chooser_keeps_the_person_and_says_why(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    await sign_in(account_app, browser, issuer, "bob", acr="urn:dsar:acr:weak")
    r = await ask(browser, "csv", "access")
    login = await browser.get(r.headers["location"])
    demo = await browser.get(login.headers["location"])
    assert 'id="subject-bob" value="bob" checked' in demo.text
    assert 'id="subject-alice" value="alice" checked' not in demo.text
    assert (
        "Before preparing and downloading a copy of your data we ask you to confirm it is you, "
        "with a fresh sign-in. Sign in again as Bob" in demo.text
    )


async def test_a_session_that_ended_says_so_and_why(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer, owner_db: asyncpg.Pool
) -> None:
    await sign_in(account_app, browser, issuer, "dave")
    assert (await browser.get("/account")).status_code == 200
    await end_session(owner_db, browser)
    page = await browser.get("/account")
    assert "Your session has ended: to keep your data safe we sign you out after 30 minutes" in (
        page.text
    )
    assert COOKIE not in browser.cookies  # cleared: said once


async def test_a_form_sent_after_the_session_ended_keeps_its_choices_and_does_nothing(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    owner_db: asyncpg.Pool,
    person: Person,
) -> None:
    await sign_in(account_app, browser, issuer, "carol")
    csrf = csrf_of((await browser.get("/account")).text)
    await end_session(owner_db, browser)
    sent = await browser.post(
        "/account/exports", **form(csrf=csrf, format="csv", purpose="portability")
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/account/login?next=/account"
    before = await owner_db.fetchval("SELECT count(*) FROM exports")
    # Back through the (demo) sign-in: the form, filled in as it was sent, and a word of why.
    login = await browser.get(sent.headers["location"])
    demo = await browser.get(login.headers["location"])
    back = await browser.post(
        "/account/demo", **form(csrf=csrf_of(demo.text), subject="carol", next="/account")
    )
    assert back.headers["location"] == "/account"
    page = (await browser.get("/account")).text
    assert "Your session had ended, so nothing was done yet. We kept your choices" in page
    assert (
        'value="csv" checked' in page
        and 'id="purpose-portability" value="portability" checked' in page
    )
    assert await owner_db.fetchval("SELECT count(*) FROM exports") == before
    # Said once.
    assert "We kept your choices" not in (await browser.get("/account")).text


async def test_a_link_that_can_no_longer_serve_says_so_before_any_sign_in(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    owner_db: asyncpg.Pool,
    person: Person,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    eid = export_id((await ask(browser, "json", "access")).headers["location"])
    transport = httpx.ASGITransport(app=account_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as stranger:
        live = await stranger.get(f"/account/exports/{eid}")
        assert live.status_code == 303 and live.headers["location"].startswith("/account/login")
        await owner_db.execute(
            "UPDATE exports SET expires_at = now() - interval '1 second' WHERE id = $1", eid
        )
        for path in (f"/account/exports/{eid}", f"/account/exports/{eid}/download"):
            gone = await stranger.get(path)
            assert gone.status_code == 410, path
            assert "This download link is no longer valid" in gone.text
