"""The account page on a phone, a tablet and a desktop, in every state a person meets it:
signed out, no downloads, a download ready, one used up, a partner given access, a form with
errors, an error page. Nothing may be wider than the screen; axe-core finds nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

from playwright.async_api import BrowserContext, Page

from catalogue import Catalogue
from stores.deployment import Deployment
from tests.auth.idp import STRONG, IdP

from .conftest import Person, ServerThread
from .test_account_page import DESKTOP, PHONE, axe_violations, sign_in
from .test_partners_page import NAME, register_partner

WIDTHS = (320, 390, 768)


async def overflow(page: Page) -> list[str]:
    """What is wider than the screen: the page itself, or an element reaching past its right
    edge (a scroll box's own content is its business, as long as the box fits)."""
    return list(
        await page.evaluate(
            """() => {
      const width = document.documentElement.clientWidth;
      const out = [];
      if (document.documentElement.scrollWidth > width)
        out.push('page: ' + document.documentElement.scrollWidth + 'px');
      for (const e of document.querySelectorAll('body *')) {
        if (e.closest('.scroll') && !e.classList.contains('scroll')) continue;
        const r = e.getBoundingClientRect();
        if (r.width && r.right > width + 0.5)
          out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' +
                   (e.className || '') + ': right edge at ' + Math.round(r.right) + 'px');
      }
      return out.slice(0, 10);
    }"""
        )
    )


async def fits(page: Page, what: str, artifacts: Path) -> None:
    """No horizontal overflow at 320, 390 and 768 px; axe-core clean on a phone and a desktop."""
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 800})
        assert await overflow(page) == [], f"{what} at {width} px"
    await page.screenshot(path=artifacts / f"{what}-768.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=artifacts / f"{what}-phone.png", full_page=True)
    assert await axe_violations(page) == [], f"{what} on a phone"
    await page.set_viewport_size(DESKTOP)
    assert await axe_violations(page) == [], f"{what} on a desktop"


async def stacked(page: Page, category: str) -> dict[str, Any]:
    """How the first data cell of a category's table is laid out: a stacked record (its label
    beside it) or a table cell."""
    cell = page.locator(f"#cat-{category} table td").first
    return dict(
        await cell.evaluate(
            """td => ({display: getComputedStyle(td).display,
                       label: getComputedStyle(td, '::before').content})"""
        )
    )


async def test_every_page_and_state_fits_a_phone(
    context: BrowserContext,
    live: ServerThread,
    person: Person,
    account_idp: IdP,
    deployment: Deployment,
    catalogue: Catalogue,
    artifacts: Path,
) -> None:
    await register_partner(deployment, catalogue, account_idp.issuer)
    page = await context.new_page()
    await page.set_viewport_size(PHONE)
    await page.goto(f"{live.url}/account")
    await fits(page, "signed-out", artifacts)

    await sign_in(page, live, person.handle, STRONG)
    await page.set_viewport_size(PHONE)
    await page.reload()
    # On a phone every category is a summary with its count, closed until opened.
    summaries = page.locator("details.category")
    held = [c for c in catalogue if person.data.rows.get(c.key) or c.key == "recordings"]
    assert await summaries.count() == len(held)
    analytics = page.locator("#cat-web_analytics")
    assert not await analytics.evaluate("d => d.open")
    records = len(person.data.rows["web_analytics"])
    assert await analytics.locator("> summary").inner_text() == f"Web Analytics {records} records"
    await analytics.locator("> summary").click()
    # ...and a table is a stack of records, each value under its label.
    cell = await stacked(page, "web_analytics")
    assert cell == {"display": "grid", "label": '"When the interaction happened"'}
    await fits(page, "account-no-downloads", artifacts)
    # On a desktop the categories start open, their tables as tables.
    await page.reload()
    assert await analytics.evaluate("d => d.open")
    assert (await stacked(page, "web_analytics"))["display"] == "table-cell"

    await page.goto(f"{live.url}/account/data/web_analytics")
    await fits(page, "category", artifacts)

    # A copy: ready, then downloaded as many times as it may be.
    await page.goto(f"{live.url}/account")
    await page.locator("#format-csv").check()
    async with page.expect_download(timeout=30_000):
        await page.get_by_role("button", name="Prepare my download").click()
    await page.get_by_role("status").filter(has_text="Download complete").wait_for()
    # The page now says what the link still serves, without a reload.
    await page.get_by_text("this link serves 2 more whole downloads").wait_for()
    export_page = page.url.split("?")[0]
    await fits(page, "export-ready", artifacts)
    for _ in range(2):
        assert (await page.request.get(f"{export_page}/download")).status == 200
    await page.goto(export_page)
    assert await page.get_by_role("link", name="Download the ZIP file").count() == 0
    assert "Used: downloaded on" in await page.locator("#export-status").inner_text()
    await fits(page, "export-used", artifacts)
    await page.goto(f"{live.url}/account")
    downloads = page.locator("section[aria-labelledby=downloads]")
    assert "No longer: it has been used" in await downloads.inner_text()
    await fits(page, "account-with-downloads", artifacts)
    # A used copy offers a new one like it, which downloads at once.
    await downloads.get_by_role("link", name="Get a new copy").first.click()
    async with page.expect_download(timeout=30_000):
        await page.get_by_role("button", name="Prepare a new copy (Access, CSV)").click()

    # A partner: the form with a problem, then a grant.
    await page.goto(f"{live.url}/account")
    panel = page.locator(".panel.partner").filter(
        has=page.get_by_role("heading", name=NAME, exact=True)
    )
    await panel.get_by_text(f"Choose what {NAME} may receive").click()
    await panel.get_by_role("button", name=f"Let {NAME} receive this data").click()
    await page.wait_for_url(f"{live.url}/account/grants")
    await fits(page, "grant-form-errors", artifacts)
    await page.get_by_label("Profile or Contact Data").check()
    await page.get_by_role("button", name=f"Let {NAME} receive this data").click()
    await page.wait_for_url(f"{live.url}/account#partners-notice")
    await fits(page, "account-with-grant", artifacts)

    # An error page.
    response = await page.goto(f"{live.url}/account/exports/{uuid4()}/download")
    assert response is not None and response.status == 404
    await fits(page, "error", artifacts)
