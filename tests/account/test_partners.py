"""The partner section: authorize a partner with a form, see what it received, revoke it."""

from __future__ import annotations

import hashlib
import re
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from api.devissuer import DevIssuer
from catalogue import Catalogue
from domain.partners import add_partner
from stores.seed import subject_id
from tests._tokens import TEST_ISSUER

from .conftest import Person, csrf_of, form, sign_in
from .test_pages import text_of

START = """mutation($grant: ID!) { startTransfer(grant: $grant) {
  __typename ... on Export { downloadUrl } } }"""
NOTICE = re.compile(r'<div class="notice ok" id="partners-notice"[^>]*><p>([^<]+)</p>')


@pytest.fixture
async def partner(account_app: Starlette, catalogue: Catalogue, owner_db: asyncpg.Pool) -> str:
    """A partner of this test alone, at the test issuer: profile and preferences only."""
    client_id = f"acct-partner-{uuid4().hex[:8]}"
    await add_partner(
        owner_db,
        catalogue,
        client_id=client_id,
        issuer=TEST_ISSUER,
        name=f"Acme {client_id[-8:]} Ltd",
        contact="privacy@acme.invalid",
        categories=["profile", "preferences"],
    )
    return client_id


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def authorize(
    browser: httpx.AsyncClient,
    partner: str,
    categories: list[str],
    expires: str,
    token: str | None = None,
) -> httpx.Response:
    token = token or csrf_of((await browser.get("/account")).text)
    fields: list[tuple[str, str]] = [("csrf", token), ("partner", partner), ("expires", expires)]
    fields += [("categories", c) for c in categories]
    return await browser.post(
        "/account/grants",
        content="&".join(f"{k}={v}" for k, v in fields),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


async def grants_of(owner_db: asyncpg.Pool, subject: UUID, partner: str) -> list[Any]:
    return list(
        await owner_db.fetch(
            "SELECT * FROM grants WHERE subject_id = $1 AND partner = $2", subject, partner
        )
    )


def section(html: str) -> str:
    start = html.index('<h2 id="partners">')
    return html[start : html.index("</section>", start)]


async def test_the_section_offers_each_partner_only_what_it_may_receive(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    partner: str,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    html = section((await browser.get("/account")).text)
    name = f"Acme {partner[-8:]} Ltd"
    start = html.index(f">{name}</h4>")
    mine = html[start : html.index("</details>", start)]
    assert '<a href="mailto:privacy@acme.invalid">' in mine
    boxes = re.findall(r'type="checkbox" name="categories" value="([a-z_]+)"', mine)
    assert boxes == ["profile", "preferences"]
    assert "checked" not in mine  # consent is never pre-ticked
    assert f'value="{in_days(90)}" min="{in_days(0)}" max="{in_days(366)}"' in mine
    # Inferred data is offered by no partner, whatever it was registered with.
    assert 'value="geolocation"' not in html
    assert "You have not let any company receive your data." in html


async def test_authorize_see_what_was_received_and_revoke(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    partner: str,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    day = in_days(30)
    r = await authorize(browser, partner, ["preferences", "profile"], day)
    assert r.status_code == 303 and r.headers["location"] == "/account#partners-notice"
    [grant] = await grants_of(owner_db, person.data.id, partner)
    assert grant["categories"] == ["profile", "preferences"]
    assert grant["expires_at"] == datetime.combine(date.fromisoformat(day), time(23, 59, 59), UTC)

    html = (await browser.get("/account")).text
    notice = NOTICE.search(html)
    assert notice and "may now receive your Profile or Contact Data and Preferences" in notice[1]
    assert NOTICE.search((await browser.get("/account")).text) is None  # shown once
    assert "has not received anything under this permission" in text_of(section(html))

    # The partner pulls a transfer through the API with its own token.
    token = issuer.mint("partner", partner)
    started = await client.post(
        "/graphql",
        json={"query": START, "variables": {"grant": str(grant["id"])}},
        headers={"Authorization": f"Bearer {token}"},
    )
    url = started.json()["data"]["startTransfer"]["downloadUrl"]
    pulled = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert pulled.status_code == 200
    [row] = await owner_db.fetch(
        "SELECT records, bytes FROM exports WHERE grant_id = $1", grant["id"]
    )
    text = text_of(section((await browser.get("/account")).text))
    assert f"What Acme {partner[-8:]} Ltd received, newest first" in text
    assert f"{row['records']:,}" in text and f"{row['bytes'] / 1000:.1f} kB" in text

    # One click revokes; the partner gets nothing more.
    page = await browser.get("/account")
    assert f'action="/account/grants/{grant["id"]}/revoke"' in page.text
    r = await browser.post(f"/account/grants/{grant['id']}/revoke", **form(csrf=csrf_of(page.text)))
    assert r.status_code == 303 and r.headers["location"] == "/account#partners-notice"
    html = (await browser.get("/account")).text
    notice = NOTICE.search(html)
    assert notice and "can no longer receive your data: you revoked its access" in notice[1]
    assert f'action="/account/grants/{grant["id"]}/revoke"' not in html
    assert "Revoked on" in text_of(section(html))
    again = await client.post(
        "/graphql",
        json={"query": START, "variables": {"grant": str(grant["id"])}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert again.json()["data"]["startTransfer"]["__typename"] == "TransferNotAllowed"
    audited = await owner_db.fetch(
        "SELECT action FROM audit_log WHERE purpose->>'grant_id' = $1 AND outcome = 'allowed' "
        "AND action LIKE 'grant.%' ORDER BY seq",
        str(grant["id"]),
    )
    assert [a["action"] for a in audited] == ["grant.create", "grant.revoke"]


@pytest.mark.parametrize(
    ("categories", "expires", "field", "message"),
    [
        ([], 30, "categories", "Choose at least one kind of data"),
        (["profile", "geolocation"], 30, "categories", "Choose only among the kinds of data"),
        (["payment"], 30, "categories", "Choose only among the kinds of data"),
        (["profile"], -1, "expires", "Choose an end date from today"),
        (["profile"], 367, "expires", "Choose an end date from today"),
        (["profile"], "31/12/2030", "expires", "Enter the end date as year-month-day"),
        (["profile"], "2030-02-30", "expires", "Enter the end date as year-month-day"),
    ],
)
async def test_a_refused_choice_shows_the_form_again_with_the_error_at_its_field(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    partner: str,
    categories: list[str],
    expires: int | str,
    field: str,
    message: str,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    day = in_days(expires) if isinstance(expires, int) else expires
    r = await authorize(browser, partner, categories, day)
    assert r.status_code == 400
    assert "<title>Error: Let Acme" in r.text
    error = re.search(rf'<p class="error-message" id="(partner-[0-9a-f]+-{field}-error)">', r.text)
    assert error, r.text
    assert message in text_of(r.text[error.start() :])
    # The message is named by its field, and listed on top with a link to the field.
    target = "fieldset" if field == "categories" else "input"
    tag = re.search(rf'<{target}[^>]*aria-describedby="[^"]*{error[1]}[^"]*"[^>]*>', r.text)
    assert tag and (field == "categories" or 'aria-invalid="true"' in tag[0])
    anchor = error[1].removesuffix(f"-{field}-error")
    link = f"{anchor}-cat-profile" if field == "categories" else f"{anchor}-expires"
    assert f'<li><a href="#{link}">' in r.text and f'id="{link}"' in r.text
    for c in categories:
        if c in ("profile", "preferences"):
            assert re.search(rf'value="{c}" id="[^"]+" checked', r.text)  # kept as chosen
    assert f'value="{day}"' in r.text
    assert await grants_of(owner_db, person.data.id, partner) == []


async def test_an_unknown_or_disabled_partner_is_a_friendly_page(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    partner: str,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    await owner_db.execute("UPDATE partners SET disabled_at = now() WHERE client_id = $1", partner)
    for who in (partner, "no-such-partner"):
        r = await authorize(browser, who, ["profile"], in_days(30))
        assert r.status_code == 404 and "This company cannot receive data from us" in r.text
    assert await grants_of(owner_db, person.data.id, partner) == []


async def test_every_post_needs_the_csrf_token_of_the_session(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    partner: str,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    fields = {"partner": partner, "categories": "profile", "expires": in_days(30)}
    for sent in ({}, {"csrf": "not-the-token"}):
        r = await browser.post("/account/grants", **form(**fields, **sent))
        assert r.status_code == 403 and "This form has expired" in r.text
    token = csrf_of((await browser.get("/account")).text)
    r = await browser.post(
        "/account/grants",
        data={**fields, "csrf": token},
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": "https://elsewhere.example",
        },
    )
    assert r.status_code == 403
    assert await grants_of(owner_db, person.data.id, partner) == []

    assert (await authorize(browser, partner, ["profile"], in_days(30))).status_code == 303
    [grant] = await grants_of(owner_db, person.data.id, partner)
    for sent in ({}, {"csrf": "not-the-token"}):
        r = await browser.post(f"/account/grants/{grant['id']}/revoke", **form(**sent))
        assert r.status_code == 403
    [grant] = await grants_of(owner_db, person.data.id, partner)
    assert grant["revoked_at"] is None


async def test_another_persons_grant_cannot_be_revoked(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    partner: str,
    owner_db: asyncpg.Pool,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    assert (await authorize(browser, partner, ["profile"], in_days(30))).status_code == 303
    [grant] = await grants_of(owner_db, person.data.id, partner)

    await sign_in(account_app, browser, issuer, "bob")
    token = csrf_of((await browser.get("/account")).text)
    for grant_id in (str(grant["id"]), str(uuid4()), "not-a-uuid"):
        r = await browser.post(f"/account/grants/{grant_id}/revoke", **form(csrf=token))
        assert r.status_code == 404 and "This permission was not found" in r.text
        assert person.marker not in r.text and partner not in r.text
    [grant] = await grants_of(owner_db, person.data.id, partner)
    assert grant["revoked_at"] is None


@pytest.mark.parametrize("login", ["weak", "old"])
async def test_a_weak_or_old_login_steps_up_and_the_grant_is_given_on_return(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    partner: str,
    login: str,
    owner_db: asyncpg.Pool,
) -> None:
    """Under the demo sign-in the step-up is the demo sign-in again (as for a download); the
    provider's is in tests/browser. The choice waits in the session and is made on return."""
    if login == "weak":
        await sign_in(account_app, browser, issuer, "dave", acr="urn:dsar:acr:weak")
    else:
        await sign_in(account_app, browser, issuer, "dave", auth_time=int(clock.time()) - 3600)
    dave = subject_id("dave")
    r = await authorize(browser, partner, ["profile"], in_days(10))
    assert r.status_code == 303
    assert r.headers["location"] == "/account/login?step_up=1&next=%2Faccount"
    assert await grants_of(owner_db, dave, partner) == []
    login_page = await browser.get(r.headers["location"])
    assert login_page.headers["location"] == "/account/demo?next=%2Faccount&step_up=1"
    demo = await browser.get(login_page.headers["location"])
    back = await browser.post(
        "/account/demo", **form(csrf=csrf_of(demo.text), subject="dave", next="/account")
    )
    assert back.status_code == 303 and back.headers["location"] == "/account#partners-notice"
    [grant] = await grants_of(owner_db, dave, partner)
    assert grant["categories"] == ["profile"] and grant["revoked_at"] is None
    notice = NOTICE.search((await browser.get("/account")).text)
    assert notice and "may now receive your Profile or Contact Data" in notice[1]


@pytest.mark.parametrize("days", [0, 366])
async def test_the_first_and_the_last_day_offered_are_accepted(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    partner: str,
    days: int,
    owner_db: asyncpg.Pool,
) -> None:
    """Today ends at 23:59:59 UTC; the last day is held to the longest grant allowed."""
    await sign_in(account_app, browser, issuer, person.handle)
    before = datetime.now(UTC)
    assert (await authorize(browser, partner, ["profile"], in_days(days))).status_code == 303
    [grant] = await grants_of(owner_db, person.data.id, partner)
    if days == 0:
        assert grant["expires_at"] == datetime.combine(before.date(), time(23, 59, 59), UTC)
    else:
        limit = timedelta(days=366)
        assert before + limit <= grant["expires_at"] <= datetime.now(UTC) + limit


async def test_a_refusal_of_the_api_is_shown_on_the_form(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    partner: str,
    owner_db: asyncpg.Pool,
) -> None:
    """A login linked to no data passes the form's checks; `grantPortability` refuses it."""
    await sign_in(account_app, browser, issuer, "nobody-at-all")
    r = await authorize(browser, partner, ["profile"], in_days(30))
    assert r.status_code == 400
    summary = text_of(r.text[r.text.index("There is a problem") :])
    assert "No personal data is linked to this login" in summary
    assert await owner_db.fetchval("SELECT count(*) FROM grants WHERE partner = $1", partner) == 0


async def test_a_grant_sent_after_the_session_ended_is_not_given_but_kept_filled_in(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    partner: str,
    owner_db: asyncpg.Pool,
) -> None:
    """A form whose session ended gives nothing (its CSRF token no longer holds): after the
    sign-in it is shown again as it was sent, for the person to send once more."""
    await sign_in(account_app, browser, issuer, "dave")
    token = csrf_of((await browser.get("/account")).text)  # the form as the page gave it
    sid = browser.cookies.get("dsar_account")
    assert sid
    await owner_db.execute(
        "UPDATE account_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1",
        hashlib.sha256(sid.encode()).digest(),
    )
    until = in_days(20)
    r = await authorize(browser, partner, ["profile", "preferences"], until, token)
    assert r.status_code == 303 and r.headers["location"] == "/account/login?next=/account"
    login_page = await browser.get(r.headers["location"])
    demo = await browser.get(login_page.headers["location"])
    await browser.post(
        "/account/demo", **form(csrf=csrf_of(demo.text), subject="dave", next="/account")
    )
    assert await grants_of(owner_db, subject_id("dave"), partner) == []
    page = (await browser.get("/account")).text
    assert "We kept your choices" in page
    assert f'value="{until}"' in page
    for key in ("profile", "preferences"):
        assert re.search(rf'value="{key}" id="[\w-]+-cat-{key}" checked', page), key
