"""/requests/new and /privacy in a real browser, with axe-core's WCAG 2.1 AA rules on every
state a person or a staff member sees."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from uuid import uuid4

import pytest
from playwright.async_api import BrowserContext

from api.settings import Settings
from stores.deployment import Deployment
from stores.registry import Stores

from .conftest import ServerThread
from .test_account_page import PHONE, axe_violations


@pytest.fixture(scope="module")
def demo(settings: Settings, deployment: Deployment, stores: Stores) -> Iterator[ServerThread]:
    """The service as `make serve` runs it: the development issuer on, no SMTP server."""
    with ServerThread(replace(settings, dev_issuer=True)) as server:
        yield server


async def test_a_person_without_an_account_asks_for_their_data(
    context: BrowserContext, demo: ServerThread, artifacts: Path
) -> None:
    page = await context.new_page()
    await page.goto(f"{demo.url}/requests/new")
    assert await page.get_by_role("heading", name="Ask for your personal data").is_visible()
    assert await axe_violations(page) == []

    await page.get_by_label("Your e-mail address", exact=True).fill("not an address")
    await page.get_by_role("button", name="Send the request").click()
    summary = page.get_by_role("alert")
    assert "The address is not an e-mail address." in await summary.inner_text()
    assert (
        await page.get_by_label("Your e-mail address", exact=True).get_attribute("aria-invalid")
        == "true"
    )
    assert await axe_violations(page) == []

    address = f"someone-{uuid4().hex[:8]}@example.net"
    await page.get_by_label("Your e-mail address", exact=True).fill(address)
    await page.get_by_label("California (CCPA)").check()
    await page.get_by_role("button", name="Send the request").click()
    await page.get_by_role("heading", name="Request received").wait_for()
    assert "a message is on its way" in await page.get_by_role("status").inner_text()
    assert await axe_violations(page) == []
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=artifacts / "requests-new-phone.png", full_page=True)

    # The demo page shows the message the address would have been sent.
    await page.goto(f"{demo.url}/account/demo/mail")
    assert address in await page.get_by_role("main").inner_text()
    assert await axe_violations(page) == []


async def test_privacy_staff_work_the_queue(
    context: BrowserContext, demo: ServerThread, artifacts: Path
) -> None:
    page = await context.new_page()
    # A request to work on, made the way a person makes one.
    address = f"queue-{uuid4().hex[:8]}@example.net"
    await page.goto(f"{demo.url}/requests/new")
    await page.get_by_label("Your e-mail address", exact=True).fill(address)
    await page.get_by_role("button", name="Send the request").click()
    await page.get_by_role("heading", name="Request received").wait_for()
    # Its reference, from the message the demo page shows.
    await page.goto(f"{demo.url}/account/demo/mail")
    mail = page.get_by_role("article").filter(has_text=address)
    reference = await mail.locator("code").inner_text()

    response = await page.goto(f"{demo.url}/privacy")
    assert response is not None and response.status == 401
    assert await axe_violations(page) == []
    await page.get_by_role("link", name="Demo sign-in as privacy staff").click()
    assert await axe_violations(page) == []
    await page.get_by_role("button", name="Sign in as privacy-1").click()
    await page.get_by_role("heading", name="Privacy requests").wait_for()
    assert await page.get_by_role("table").is_visible()
    assert await axe_violations(page) == []
    await page.screenshot(path=artifacts / "privacy-queue.png", full_page=True)

    # Its own page (the queue shows the first 100 by due date; a long test run makes more).
    await page.goto(f"{demo.url}/privacy/requests/{reference}")
    await page.get_by_role("heading", name="Timeline").wait_for()
    assert await axe_violations(page) == []
    await page.get_by_label("Why more time is needed").fill(
        "Part of the data is in an archive we must restore first."
    )
    await page.get_by_role("button", name="Extend").click()
    status = page.get_by_role("status")
    # A request whose address matched no one: no address is kept, so no one can be e-mailed,
    # and the page says so rather than claim the person was told.
    assert "no e-mail could be sent" in await status.inner_text()
    assert "Extended to" in await page.get_by_role("main").inner_text()
    assert await axe_violations(page) == []
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=artifacts / "privacy-request-phone.png", full_page=True)
