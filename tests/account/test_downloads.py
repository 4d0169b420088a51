"""A copy to download: asked for with a form, made after a step-up, downloaded, expired."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from uuid import UUID, uuid4

import asyncpg
import httpx
import orjson
import pytest
from starlette.applications import Starlette

from api.account.downloads import IN_PAGE_RECORDS, in_page
from api.app import create_app
from api.devissuer import DevIssuer
from api.settings import Settings
from tests._tokens import TEST_ISSUER

from .conftest import Person, csrf_of, form, sign_in


async def ask(browser: httpx.AsyncClient, fmt: str, purpose: str) -> httpx.Response:
    page = await browser.get("/account")
    return await browser.post(
        "/account/exports", **form(csrf=csrf_of(page.text), format=fmt, purpose=purpose)
    )


def export_id(location: str) -> UUID:
    assert location.startswith("/account/exports/") and location.endswith("?start=1"), location
    return UUID(location.removeprefix("/account/exports/").removesuffix("?start=1"))


@pytest.mark.parametrize(("fmt", "purpose"), [("csv", "access"), ("json", "portability")])
async def test_ask_then_download_the_zip(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    fmt: str,
    purpose: str,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    r = await ask(browser, fmt, purpose)
    assert r.status_code == 303
    eid = export_id(r.headers["location"])
    page = await browser.get(r.headers["location"])
    assert page.status_code == 200 and "data-autostart" in page.text
    assert f"/account/exports/{eid}/download" in page.text
    zipped = await browser.get(f"/account/exports/{eid}/download")
    assert zipped.status_code == 200
    # A whole copy sent may not have arrived: the page offers it again, a few times.
    page = await browser.get(f"/account/exports/{eid}")
    assert "sent in full" in page.text and "2 more whole downloads" in page.text
    for _ in range(2):
        assert (await browser.get(f"/account/exports/{eid}/download")).status_code == 200
    # Then the link is spent.
    again = await browser.get(f"/account/exports/{eid}/download")
    assert again.status_code == 410 and "This download can no longer be used" in again.text
    assert zipped.headers["content-type"] == "application/zip"
    assert zipped.headers["cache-control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as bundle:
        manifest = orjson.loads(bundle.read("manifest.json"))
        assert manifest["format"] == fmt and manifest["purpose"] == purpose
        assert person.marker.encode() in bundle.read(f"data/profile.{fmt}")
        assert ("data/geolocation." + fmt in bundle.namelist()) == (purpose == "access")
    listed = (await browser.get("/account")).text
    assert f"/account/exports/{eid}" in listed and "Used: downloaded on" in listed
    assert "Get a new copy" in listed
    used = (await browser.get(f"/account/exports/{eid}")).text
    assert "cannot be downloaded again" in used and "Prepare a new copy" in used
    assert f'name="format" value="{fmt}"' in used and f'name="purpose" value="{purpose}"' in used
    audited = await owner_db.fetch(
        "SELECT action, outcome, purpose->>'export_id' AS export_id FROM audit_log "
        "WHERE subject_id = $1 ORDER BY seq",
        person.data.id,
    )
    sent = [("export.download", "allowed", str(eid)), ("export.sent", "allowed", str(eid))]
    assert [tuple(r.values()) for r in audited] == [
        ("request.receive", "allowed", None),  # the request the export answers
        ("export.request", "allowed", str(eid)),
        *sent,
        ("request.complete", "allowed", str(eid)),  # answered by the first whole copy
        *sent * 2,
        ("export.download", "denied", str(eid)),  # the spent link, refused
    ]


async def test_a_weak_login_steps_up_and_comes_back_to_finish(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    """Under the demo sign-in the step-up is the demo sign-in again; the provider's is in
    tests/browser. The export asked for waits in the session and is made on return."""
    await sign_in(account_app, browser, issuer, "dave", acr="urn:dsar:acr:weak")
    r = await ask(browser, "csv", "access")
    assert r.status_code == 303
    assert r.headers["location"] == "/account/login?step_up=1&next=%2Faccount"
    login = await browser.get(r.headers["location"])
    assert login.status_code == 303
    assert login.headers["location"] == "/account/demo?next=%2Faccount&step_up=1"
    demo = await browser.get(login.headers["location"])
    back = await browser.post(
        "/account/demo", **form(csrf=csrf_of(demo.text), subject="dave", next="/account")
    )
    assert back.status_code == 303
    eid = export_id(back.headers["location"])
    zipped = await browser.get(f"/account/exports/{eid}/download")
    assert zipped.status_code == 200 and zipped.content[:2] == b"PK"


async def test_an_old_login_steps_up_before_the_download(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer, person: Person
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    eid = export_id((await ask(browser, "json", "access")).headers["location"])
    await sign_in(account_app, browser, issuer, person.handle, auth_time=int(time.time()) - 3600)
    r = await browser.get(f"/account/exports/{eid}/download")
    assert r.status_code == 303
    assert r.headers["location"] == (
        f"/account/login?step_up=1&next=%2Faccount%2Fexports%2F{eid}%3Fstart%3D1"
    )


async def test_unknown_expired_and_other_peoples_links_are_friendly_pages(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    eid = export_id((await ask(browser, "csv", "portability")).headers["location"])
    for path in (
        f"/account/exports/{uuid4()}",
        "/account/exports/nope",
        f"/account/exports/{uuid4()}/download",
    ):
        r = await browser.get(path)
        assert r.status_code == 404 and "This download link is not valid" in r.text
        assert r.headers["content-type"].startswith("text/html")

    await sign_in(account_app, browser, issuer, "bob")  # someone else
    for path in (f"/account/exports/{eid}", f"/account/exports/{eid}/download"):
        r = await browser.get(path)
        assert r.status_code == 404 and person.marker not in r.text

    await sign_in(account_app, browser, issuer, person.handle)
    await owner_db.execute(
        "UPDATE exports SET expires_at = now() - interval '1 second' WHERE id = $1", eid
    )
    for path in (f"/account/exports/{eid}", f"/account/exports/{eid}/download"):
        r = await browser.get(path)
        assert r.status_code == 410 and "This download can no longer be used" in r.text
    assert "Expired" in (await browser.get("/account")).text


async def test_asking_needs_the_csrf_token_and_a_real_choice(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    refused = await browser.post("/account/exports", **form(format="csv", purpose="access"))
    assert refused.status_code == 403
    token = csrf_of((await browser.get("/account")).text)
    for fmt, purpose in (("xml", "access"), ("csv", "marketing")):
        r = await browser.post("/account/exports", **form(csrf=token, format=fmt, purpose=purpose))
        assert r.status_code == 400
    assert (
        await owner_db.fetchval(
            "SELECT count(*) FROM exports WHERE subject_id = $1", person.data.id
        )
        == 0
    )


@pytest.fixture
async def one_a_day(
    settings: Settings, account_app: Starlette, issuer: DevIssuer
) -> AsyncIterator[Starlette]:
    app = create_app(
        replace(settings, exports_per_day=1), key_sources={TEST_ISSUER: issuer.key_set()}
    )
    async with app.router.lifespan_context(app):
        yield app


async def test_past_the_daily_limit_a_429_page_says_when(
    one_a_day: Starlette, issuer: DevIssuer, person: Person
) -> None:
    transport = httpx.ASGITransport(app=one_a_day)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as browser:
        await sign_in(one_a_day, browser, issuer, person.handle)
        assert (await ask(browser, "csv", "access")).status_code == 303
        r = await ask(browser, "json", "access")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 3600
    assert "You can ask again in about 24 hours" in r.text
    # True to what the page then offers: the copy asked for can still be downloaded...
    assert "we make 1 copies a day" not in r.text
    assert "one of your earlier copies can still be downloaded" in r.text


async def test_the_limit_page_never_points_at_copies_that_cannot_be_downloaded(
    one_a_day: Starlette, issuer: DevIssuer, person: Person
) -> None:
    transport = httpx.ASGITransport(app=one_a_day)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as browser:
        await sign_in(one_a_day, browser, issuer, person.handle)
        eid = export_id((await ask(browser, "csv", "access")).headers["location"])
        for _ in range(3):  # every whole download the link serves
            assert (await browser.get(f"/account/exports/{eid}/download")).status_code == 200
        r = await ask(browser, "json", "access")
    assert r.status_code == 429
    assert "none of your earlier copies can still be downloaded" in r.text
    assert "still on your data page" not in r.text


def test_large_copies_are_left_to_the_browsers_own_download() -> None:
    # In-page progress holds the ZIP in the browser's memory; a large one goes straight to disk.
    assert in_page(0) and in_page(IN_PAGE_RECORDS)
    assert not in_page(IN_PAGE_RECORDS + 1)
