"""What a person reads: labels from the catalogue instead of codes, times in their own time zone
(UTC when they ask), the law in disclosures rather than in running text, and demo people
called what their handles say, with hints that say what they have."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from api.settings import Settings
from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import DEMO_HANDLES
from tests.auth.idp import IdP

from .conftest import AXE, Person, ServerThread, page_settings
from .test_account_page import DESKTOP, PHONE, WEAK, axe_violations, sign_in
from .test_phone_layout import overflow

ZONE = "America/New_York"
DRIVERS_LICENSE = "Driver’s license number"  # noqa: RUF001  # the policy's own apostrophe
# A citation in running text: "Art. 15", "Article 15(1)", "§ 7024(d)", "Cal. Civ. Code".
LAW = re.compile(r"\bArt\.|\bArticle \d|§|Civ\. Code")
TIME = re.compile(r"\b\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}(?::\d{2})? ([A-Z]{2,5}|[+-]\d+)\b")


@pytest.fixture
async def in_new_york(chromium: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await chromium.new_context(locale="en-US", timezone_id=ZONE)
    await ctx.add_init_script(path=str(AXE))
    yield ctx
    await ctx.close()


async def visible_text(page: Page) -> str:
    """The text a person sees (closed disclosures hold theirs back)."""
    return str(await page.locator("main").inner_text())


def zones(text: str) -> set[str]:
    return {m.group(1) for m in TIME.finditer(text)}


async def test_codes_times_and_the_law_read_as_a_person_reads(
    in_new_york: BrowserContext, live: ServerThread, person: Person, artifacts: Path
) -> None:
    page = await in_new_york.new_page()
    await page.set_viewport_size(PHONE)
    await sign_in(page, live, person.handle, WEAK)
    await page.reload()  # the first page set the zone cookie

    # Times in the person's zone, and the page says which.
    footer = page.locator("#times")
    assert await footer.inner_text() == (
        f"Times are shown in your time zone ({ZONE}). Show them in UTC"
    )
    await page.locator("#cat-sensitive > summary").click()
    await page.locator("#cat-web_analytics > summary").click()
    text = await visible_text(page)
    assert zones(text) and zones(text) <= {"EST", "EDT"}, zones(text)

    # Codes in words: the catalogue's labels, never the stored code.
    sensitive = page.locator("#cat-sensitive table")
    kind = "td[data-label='Which identification number this is']"
    kinds = sorted(await sensitive.locator(kind).all_inner_texts())
    assert kinds == [DRIVERS_LICENSE, "Passport number", "Social Security number"]
    for code in ("ssn", "drivers_license", "state_id"):
        assert not re.search(rf"\b{code}\b", text), code

    # The law stays in "The law" disclosures; the running text is plain.
    assert not LAW.search(text), LAW.findall(text)
    law = page.locator("details:has(> summary:text-is('The law'))").first
    await law.locator("summary").click()
    assert LAW.search(await law.inner_text())
    assert await overflow(page) == []
    assert await axe_violations(page) == []
    await page.set_viewport_size(DESKTOP)
    assert await axe_violations(page) == []

    # UTC on request, kept from page to page, and back again.
    await page.get_by_role("link", name="Show them in UTC").click()
    await page.wait_for_url(f"{live.url}/account")
    assert zones(await visible_text(page)) == {"UTC"}
    await page.goto(f"{live.url}/account/data/web_analytics")
    assert zones(await visible_text(page)) == {"UTC"}
    await page.get_by_role("link", name="Show them in my time zone").click()
    await page.wait_for_url(f"{live.url}/account/data/web_analytics")
    assert zones(await visible_text(page)) <= {"EST", "EDT"}
    await page.screenshot(path=artifacts / "category-new-york.png", full_page=True)


@pytest.fixture
def demo_live(settings: Settings, stores: Stores, account_idp: IdP) -> Iterator[ServerThread]:
    """`make serve`'s demo sign-in beside the provider's."""
    with ServerThread(replace(page_settings(settings, account_idp), dev_issuer=True)) as server:
        yield server


async def test_demo_people_are_who_their_handles_say_and_have_what_the_hints_say(
    context: BrowserContext,
    demo_live: ServerThread,
    demo_links: None,
    catalogue: Catalogue,
    artifacts: Path,
) -> None:
    page = await context.new_page()
    for width in (320, 390, 768):
        await page.set_viewport_size({"width": width, "height": 800})
        await page.goto(f"{demo_live.url}/account/demo")
        assert await overflow(page) == []
    assert await axe_violations(page) == []
    await page.screenshot(path=artifacts / "demo-sign-in.png", full_page=True)
    total = len(list(catalogue))
    for handle in DEMO_HANDLES:
        await context.clear_cookies()
        await page.goto(f"{demo_live.url}/account/demo")
        hint = await page.locator(f"#subject-{handle}-hint").inner_text()
        found = re.match(rf"(\d+) of {total} categories, ([\d,]+) records", hint)
        assert found, hint
        await page.locator(f"#subject-{handle}").check()
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{demo_live.url}/account")
        held = page.locator("details.category")
        shown = await page.locator("main").inner_text()
        assert await held.count() == int(found.group(1)), (handle, hint, shown[:300])
        counts = await held.locator("> summary .count").all_inner_texts()
        assert sum(int(c.split()[0].replace(",", "")) for c in counts) == int(
            found.group(2).replace(",", "")
        )
        profile = page.locator("#cat-profile")
        await profile.evaluate("d => { d.open = true; }")
        assert await profile.get_by_text(handle.capitalize(), exact=True).count() >= 1, handle
        ids = await page.locator("#cat-sensitive").count() == 1
        assert ("government ID numbers" in hint) == ids, (handle, hint)
