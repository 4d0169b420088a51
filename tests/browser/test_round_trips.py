"""Items a person meets when leaving and coming back, and the way to each right, in chromium
at phone and desktop widths: the step-up chooser keeps the person and says why, an ended
session says so, a form sent after it keeps its choices, a dead link says so before any
sign-in, and every right on the page leads somewhere that works."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import asyncpg
import pytest
from playwright.async_api import BrowserContext, Page

from api.settings import Settings
from catalogue import Catalogue
from stores.registry import Stores
from tests.auth.idp import IdP

from .conftest import ServerThread
from .test_account_page import DESKTOP, PHONE, axe_violations
from .test_phone_layout import overflow


@pytest.fixture
def demo_server(
    settings: Settings, stores: Stores, account_idp: IdP, demo_links: None
) -> Iterator[ServerThread]:
    """`make serve`: the demo sign-in, and no provider."""
    with ServerThread(replace(settings, dev_issuer=True)) as server:
        yield server


@pytest.fixture
def strict_server(
    settings: Settings, stores: Stores, account_idp: IdP, demo_links: None
) -> Iterator[ServerThread]:
    """The demo sign-in under a rule it never meets (an acr it does not give): every copy
    asked for goes through a step-up."""
    strict = replace(settings, dev_issuer=True, step_up_acr_values=("urn:dsar:acr:never",))
    with ServerThread(strict) as server:
        yield server


async def demo_sign_in(page: Page, server: ServerThread, handle: str) -> None:
    await page.goto(f"{server.url}/account/demo")
    await page.locator(f"#subject-{handle}").check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{server.url}/account")


async def clean_at_both_widths(page: Page, what: str) -> None:
    for viewport in (PHONE, DESKTOP):
        await page.set_viewport_size(viewport)
        assert await overflow(page) == [], what
        assert await axe_violations(page) == [], what


async def end_session(context: BrowserContext, owner_db: asyncpg.Pool) -> None:
    """As 30 idle minutes would."""
    [sid] = [c["value"] for c in await context.cookies() if c["name"].endswith("dsar_account")]
    await owner_db.execute(
        "UPDATE account_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1",
        hashlib.sha256(sid.encode()).digest(),
    )


async def test_the_step_up_keeps_the_person_and_says_why(
    context: BrowserContext, strict_server: ServerThread
) -> None:
    page = await context.new_page()
    await page.set_viewport_size(PHONE)
    await demo_sign_in(page, strict_server, "bob")
    await page.get_by_role("button", name="Prepare my download").click()
    await page.wait_for_url(f"{strict_server.url}/account/demo?**")
    assert await page.locator("#subject-bob").is_checked()
    reason = page.get_by_role("status")
    assert "we ask you to confirm it is you" in await reason.inner_text()
    assert "Sign in again as Bob" in await reason.inner_text()
    await clean_at_both_widths(page, "step-up chooser")


async def test_an_ended_session_says_so_and_a_form_keeps_its_choices(
    context: BrowserContext, demo_server: ServerThread, owner_db: asyncpg.Pool, artifacts: Path
) -> None:
    page = await context.new_page()
    await page.set_viewport_size(PHONE)
    await demo_sign_in(page, demo_server, "carol")
    await page.locator("#format-csv").check()
    await page.locator("#purpose-portability").check()
    exports = await owner_db.fetchval("SELECT count(*) FROM exports")
    await end_session(context, owner_db)
    await page.get_by_role("button", name="Prepare my download").click()
    # Signed in again (the demo's sign-in stands for the provider's)...
    await page.wait_for_url(f"{demo_server.url}/account/demo?**")
    await page.locator("#subject-carol").check()
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{demo_server.url}/account")
    # ...the form is as it was, nothing was done, and the page says so.
    notice = page.get_by_role("status").filter(has_text="We kept your choices")
    assert await notice.count() == 1
    assert await page.locator("#format-csv").is_checked()
    assert await page.locator("#purpose-portability").is_checked()
    assert await owner_db.fetchval("SELECT count(*) FROM exports") == exports
    await clean_at_both_widths(page, "kept choices")
    await page.screenshot(path=artifacts / "kept-choices.png")

    # An idle session that ended: the page says so, and why.
    await end_session(context, owner_db)
    await page.goto(f"{demo_server.url}/account")
    ended = page.get_by_role("status")
    assert "Your session has ended" in await ended.inner_text()
    assert "30 minutes without activity" in await ended.inner_text()
    await clean_at_both_widths(page, "session ended")


async def test_every_right_leads_somewhere_and_dead_links_say_so_first(
    context: BrowserContext, demo_server: ServerThread, catalogue: Catalogue
) -> None:
    page = await context.new_page()
    # A download link nobody can use any more, opened before signing in.
    response = await page.goto(f"{demo_server.url}/account/exports/{uuid4()}/download")
    assert response is not None and response.status == 410
    assert await page.get_by_role("heading", name="This download link is no longer valid").count()
    await clean_at_both_widths(page, "dead link")

    await demo_sign_in(page, demo_server, "alice")
    email = catalogue.controller.email
    assert email
    by_request = {r.key for r in catalogue.rights if r.by_request}
    for right in catalogue.rights:
        ways = page.get_by_role("list", name=f"How to use your right: {right.title}")
        if right.key not in by_request and right.key not in ("access", "portability"):
            continue
        links = ways.get_by_role("link")
        hrefs = [str(await links.nth(i).get_attribute("href")) for i in range(await links.count())]
        mail = [h for h in hrefs if h.startswith("mailto:")]
        assert [urlsplit(h).path for h in mail] == [email], (right.key, hrefs)
        assert right.title in unquote(urlsplit(mail[0]).query)
        for href in hrefs:
            if href.startswith("#"):
                assert await page.locator(href).count() == 1, (right.key, href)
    # The request form, for each right it takes, opens with that right chosen.
    for kind in ("access", "portability"):
        await page.goto(f"{demo_server.url}/account")
        ways = page.get_by_role("list", name=f"How to use your right: {kind.capitalize()}")
        await ways.get_by_role("link", name="request form").click()
        await page.wait_for_url(f"{demo_server.url}/requests/new?kind={kind}")
        assert await page.locator(f"#kind-{kind}").is_checked()
    await clean_at_both_widths(page, "request form")
