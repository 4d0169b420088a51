"""The account page in a real browser, the way a person uses it, against the real provider."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import orjson
from playwright.async_api import BrowserContext, Download, Page

from .conftest import Person, ServerThread

WEAK = "urn:dsar:acr:weak"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A and AA rules on the page as it is now."""
    result = await page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        WCAG_21_AA,
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


async def sign_in(page: Page, live: ServerThread, handle: str, acr: str) -> None:
    """The provider's headless login stands in for the person typing their password."""
    hint = quote(f"{handle}|{acr}|0", safe="")
    await page.goto(f"{live.url}/account/login?login_hint={hint}")
    await page.wait_for_url(f"{live.url}/account")


async def download_via_form(page: Page, live: ServerThread, fmt: str, purpose: str) -> Download:
    await page.goto(f"{live.url}/account")
    await page.locator(f"#format-{fmt}").check()
    await page.locator(f"#purpose-{purpose}").check()
    async with page.expect_download(timeout=30_000) as info:
        await page.get_by_role("button", name="Prepare my download").click()
    return await info.value


async def zip_of(download: Download) -> zipfile.ZipFile:
    path = Path(await download.path())
    return zipfile.ZipFile(io.BytesIO(await asyncio.to_thread(path.read_bytes)))


async def test_a_person_signs_in_reads_downloads_and_signs_out(
    context: BrowserContext, live: ServerThread, person: Person, artifacts: Path
) -> None:
    page = await context.new_page()
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )

    await page.goto(f"{live.url}/account")
    assert await page.get_by_role("heading", name="See and download your data").is_visible()
    assert await axe_violations(page) == []

    # A weak sign-in is enough to read...
    await sign_in(page, live, person.handle, WEAK)
    profile = person.data.rows["profile"][0]
    main = page.get_by_role("main")
    for value in (profile["first_name"], profile["email"]):
        await main.get_by_text(value, exact=True).first.wait_for()
    assert await page.get_by_text("held, not shown").count() >= 1
    assert await axe_violations(page) == []
    await page.set_viewport_size(DESKTOP)
    await page.screenshot(path=artifacts / "account-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=artifacts / "account-phone.png", full_page=True)
    assert await axe_violations(page) == []
    await page.set_viewport_size(DESKTOP)

    # ...but a copy needs a strong, recent one: the page sends the person through it and
    # comes back to finish the download.
    csv = await download_via_form(page, live, "csv", "access")
    assert "/account/exports/" in page.url
    with await zip_of(csv) as bundle:
        names = bundle.namelist()
        assert {"manifest.json", "index.html", "data/profile.csv"} <= set(names)
        assert orjson.loads(bundle.read("manifest.json"))["format"] == "csv"
        assert person.marker.encode() in bundle.read("data/profile.csv")
    await page.get_by_role("status").filter(has_text="Download complete").wait_for()
    assert await axe_violations(page) == []
    await page.screenshot(path=artifacts / "export-desktop.png", full_page=True)

    json_bundle = await download_via_form(page, live, "json", "portability")
    with await zip_of(json_bundle) as bundle:
        manifest = orjson.loads(bundle.read("manifest.json"))
        assert manifest["format"] == "json" and manifest["purpose"] == "portability"
        profile_rows = orjson.loads(bundle.read("data/profile.json"))
        assert profile_rows[0]["email"] == profile["email"]
        assert "data/geolocation.json" not in bundle.namelist()  # inferred: not portable

    await page.goto(f"{live.url}/account")
    downloads = page.get_by_role("region", name="Your downloads")
    assert await downloads.get_by_role("row").count() == 3  # the header and two copies
    await page.goto(f"{live.url}/account/data/web_analytics")
    await page.get_by_role("link", name="Next page").click()
    await page.get_by_text("Records 26 to 40 of 40").wait_for()
    assert await axe_violations(page) == []

    # A link that is not (or no longer) theirs is a page that says so.
    response = await page.goto(f"{live.url}/account/exports/{uuid4()}/download")
    assert response is not None and response.status == 404
    assert await page.get_by_role("heading", name="This download link is not valid").is_visible()
    assert await axe_violations(page) == []

    # Signing out ends the session here and at the provider; the page is closed after.
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("button", name="Yes, sign me out").click()
    await page.wait_for_url(f"{live.url}/account/signed-out")
    assert await page.get_by_text("You are signed out").is_visible()
    await page.goto(f"{live.url}/account")
    assert person.marker not in await page.content()
    await page.goto(f"{live.url}/account/data/profile")
    assert person.marker not in await page.content()
    assert csp_errors == []
    cookies = await context.cookies(live.url)
    assert all("eyJ" not in c["value"] for c in cookies)
