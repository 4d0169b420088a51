"""The partner section in a real browser: authorize a partner (through the provider's step-up),
see what it pulled with its own client-credentials token, revoke it with one click."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from playwright.async_api import BrowserContext, Page, expect

from catalogue import Catalogue
from domain.partners import add_partner
from stores.deployment import Deployment
from tests.auth.idp import IdP

from .conftest import Person, ServerThread
from .test_account_page import DESKTOP, PHONE, WCAG_21_AA, WEAK, axe_violations, sign_in

PARTNER = "partner-two"  # a client-credentials client of the test provider (provider.mjs)
NAME = "Partner Two Ltd"
LISTED = "{ portabilityTransfers { grant categories } }"
START = """mutation($grant: ID!) { startTransfer(grant: $grant) {
  __typename ... on Export { downloadUrl } ... on TransferNotAllowed { message } } }"""


async def register_partner(deployment: Deployment, catalogue: Catalogue, issuer: str) -> None:
    """Once a run: whichever test comes first registers it."""
    db = await asyncpg.connect(deployment.migration_dsn)
    try:
        if await db.fetchval("SELECT 1 FROM partners WHERE client_id = $1", PARTNER):
            return
        await add_partner(
            db,
            catalogue,
            client_id=PARTNER,
            issuer=issuer,
            name=NAME,
            contact="dpo@partner-two.invalid",
            categories=["profile", "payment", "preferences"],
        )
    finally:
        await db.close()


async def as_partner(live: ServerThread, token: str, query: str, **variables: str) -> Any:
    async with httpx.AsyncClient(base_url=live.url) as api:
        r = await api.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = r.json()
    assert r.status_code == 200 and "errors" not in body, body
    return body["data"]


async def section_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A and AA rules on the partner section alone: the whole page is
    scanned once per test here and in test_account_page; a section scan takes a fraction."""
    result = await page.evaluate(
        "async (tags) => await axe.run('section[aria-labelledby=partners]',"
        " {runOnly: {type: 'tag', values: tags}})",
        WCAG_21_AA,
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


async def notice(page: Page) -> str:
    box = page.locator("#partners-notice")
    await box.wait_for()
    # The page opens with the confirmation focused, so a screen reader reads it first.
    assert await page.evaluate("document.activeElement && document.activeElement.id") == (
        "partners-notice"
    )
    return await box.inner_text()


async def test_a_person_authorizes_a_partner_sees_its_transfer_and_revokes_it(
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
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await sign_in(page, live, person.handle, WEAK)

    # Authorize: the partner's own form, only what it may receive, an end date in 60 days.
    panel = page.locator(".panel.partner").filter(
        has=page.get_by_role("heading", name=NAME, exact=True)
    )
    await panel.get_by_text(f"Choose what {NAME} may receive").click()
    boxes = panel.get_by_role("group", name=f"What may {NAME} receive?").get_by_role("checkbox")
    assert await boxes.count() == 3
    until = (datetime.now(UTC).date() + timedelta(days=60)).isoformat()
    await panel.get_by_label("Until").fill(until)
    assert await axe_violations(page) == []  # the whole page, with the form open
    # Sent with nothing chosen: the form again, the problem on top (focused) and at its field.
    await panel.get_by_role("button", name=f"Let {NAME} receive this data").click()
    await page.wait_for_url(f"{live.url}/account/grants")
    assert (await page.title()).startswith(f"Error: Let {NAME} receive your data")
    summary = page.get_by_role("alert")
    assert await summary.evaluate("e => e === document.activeElement")
    problem = f"Choose at least one kind of data {NAME} may receive."
    await summary.get_by_role("link", name=problem).wait_for()
    group = page.get_by_role("group", name=f"What may {NAME} receive?")
    await expect(group).to_have_accessible_description(re.compile(re.escape(problem) + "$"))
    assert await page.get_by_label("Until").input_value() == until  # kept as typed
    assert await axe_violations(page) == []
    await page.get_by_label("Profile or Contact Data").check()
    await page.get_by_label("Preferences").check()
    # A weak sign-in cannot give a grant: the provider's step-up, then back to finish.
    to_provider: list[str] = []
    page.on(
        "request",
        lambda r: to_provider.append(r.url) if r.url.startswith(account_idp.issuer) else None,
    )
    await page.get_by_role("button", name=f"Let {NAME} receive this data").click()
    await page.wait_for_url(f"{live.url}/account#partners-notice")
    assert any("prompt=login" in u and "acr_values=" in u for u in to_provider), to_provider
    given = await notice(page)
    assert f"{NAME} may now receive your Profile or Contact Data and Preferences" in given
    assert f"until {datetime.fromisoformat(until):%-d %b %Y}, 23:59 UTC" in given

    # The partner finds the grant, pulls a transfer with its own client-credentials token.
    token = await account_idp.client_token(PARTNER, "portability:pull")
    [listed] = (await as_partner(live, token, LISTED))["portabilityTransfers"]
    assert listed["categories"] == ["profile", "preferences"]
    started = (await as_partner(live, token, START, grant=listed["grant"]))["startTransfer"]
    async with httpx.AsyncClient() as api:
        pulled = await api.get(started["downloadUrl"], headers={"Authorization": f"Bearer {token}"})
    assert pulled.status_code == 200
    with zipfile.ZipFile(io.BytesIO(pulled.content)) as bundle:
        manifest = orjson.loads(bundle.read("manifest.json"))
        assert set(manifest["categories"]) == {"profile", "preferences"}
        assert person.marker.encode() in bundle.read("data/profile.json")

    # Reloaded, the page lists what the partner received, and when.
    await page.reload()
    received = page.get_by_role("region", name=f"What {NAME} received")
    assert await received.get_by_role("row").count() == 2  # the header and the transfer
    cells = await received.get_by_role("row").nth(1).get_by_role("cell").all_inner_texts()
    assert cells[1].endswith("UTC") and int(cells[2].replace(",", "")) > 0
    assert cells[3].endswith(("bytes", "kB"))
    assert await section_violations(page) == []
    section = page.locator("section[aria-labelledby=partners]")
    await panel.get_by_text(f"Choose what {NAME} may receive").click()
    await page.set_viewport_size(DESKTOP)
    await section.screenshot(path=artifacts / "partners-desktop.png")
    await page.set_viewport_size(PHONE)
    await section.screenshot(path=artifacts / "partners-phone.png")
    assert await section_violations(page) == []
    await page.set_viewport_size(DESKTOP)

    # One click revokes; the partner gets nothing more, whatever token it still holds.
    await page.get_by_role("button", name=f"Revoke access of {NAME}").click()
    await page.wait_for_url(f"{live.url}/account#partners-notice")
    assert "can no longer receive your data" in await notice(page)
    assert await page.get_by_role("button", name=f"Revoke access of {NAME}").count() == 0
    assert await section_violations(page) == []
    refused = (await as_partner(live, token, START, grant=listed["grant"]))["startTransfer"]
    assert refused["__typename"] == "TransferNotAllowed"
    assert (await as_partner(live, token, LISTED))["portabilityTransfers"] == []
    assert csp_errors == []
