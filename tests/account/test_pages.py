"""What the page shows: each category in plain words, paged, withheld values only as held."""

from __future__ import annotations

import re
from html import unescape
from uuid import uuid4

import asyncpg
import httpx
from starlette.applications import Starlette

from api.devissuer import DevIssuer
from catalogue import Catalogue
from domain.audit import Action, record
from domain.partners import add_partner
from domain.principals import Customer, Partner, SupportAgent
from stores.seed import SubjectData, build_subject

from .conftest import Person, sign_in

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


async def test_every_held_category_in_the_policys_words(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    catalogue: Catalogue,
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    r = await browser.get("/account")
    assert r.status_code == 200
    text = text_of(r.text)
    for cat in catalogue:
        assert cat.title in text
        assert cat.retention.title in text
        for purpose in cat.purposes:
            assert purpose.title in text
        for recipient in cat.recipients:
            assert recipient.title in text
    profile = person.data.rows["profile"][0]
    for value in (profile["first_name"], profile["email"], profile["city"]):
        assert value in text
    assert "Your right to know" in text and "GDPR Art. 15 (right of access)" in text
    assert catalogue.controller.address in text


def assert_no_withheld_value(person: SubjectData, html: str) -> None:
    """No withheld value of the person's, with or without its dashes, is anywhere in the page."""
    secrets = [r["value"] for r in person.rows["sensitive"]]
    secrets += [person.rows["payment"][0][k] for k in ("account_number", "routing_number")]
    secrets += [person.rows["identifiers"][0][k] for k in ("password_hash", "security_answer_hash")]
    for secret in secrets:
        for form in {secret, secret.replace("-", "")}:
            assert form not in html


async def test_withheld_values_are_held_not_shown(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    carol = build_subject("carol", full=True, sensitive=True)
    await sign_in(account_app, browser, issuer, "carol")
    html = (await browser.get("/account")).text
    text = text_of(html)
    assert "Social Security number" in text and "held, not shown" in text
    assert catalogue.withholding.title in text
    assert_no_withheld_value(carol, html)
    payment = (await browser.get("/account/data/payment")).text
    assert (
        "Held, not shown" in payment and carol.rows["payment"][0]["account_number"] not in payment
    )


async def test_a_gdpr_persons_withheld_values_are_in_her_own_copy(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    """alice lives in Berlin: the page must not tell her the law forbids giving her the values
    she gave us (it does not: GDPR Art. 15(3) makes them part of her own copy); the hashes stay
    withheld, each with its exception's reason. The values are still never on the page."""
    alice = build_subject("alice", full=True, sensitive=True)
    await sign_in(account_app, browser, issuer, "alice")
    html = (await browser.get("/account")).text
    text = text_of(html)
    rule = catalogue.release_rule("GDPR")
    assert rule is not None
    assert "part of your copy when you download it yourself" in text
    assert rule.title in text and " ".join(rule.description.split()) in text
    assert "the law forbids disclosing it" not in text
    assert catalogue.withholding.title not in text
    why = rule.exception("identifiers", "password_hash")
    assert why is not None and why in text
    assert_no_withheld_value(alice, html)


async def test_large_categories_are_paged_both_ways(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer, person: Person
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    events = person.data.rows["web_analytics"]
    assert len(events) == 40
    overview = (await browser.get("/account")).text
    assert "See all 40 records of Web Analytics" in text_of(overview)

    first = await browser.get("/account/data/web_analytics")
    assert "Records 1 to 25 of 40" in text_of(first.text)
    assert 'rel="prev"' not in first.text
    next_url = unescape(re.search(r'href="([^"]+)" rel="next"', first.text).group(1))  # type: ignore[union-attr]
    second = await browser.get(next_url)
    assert "Records 26 to 40 of 40" in text_of(second.text) and "Page 2" in second.text
    assert 'rel="next"' not in second.text
    prev_url = unescape(re.search(r'href="([^"]+)" rel="prev"', second.text).group(1))  # type: ignore[union-attr]
    assert prev_url == "/account/data/web_analytics"
    urls = {e["page_url"] for e in events}
    shown = {u for u in urls if u in first.text} | {u for u in urls if u in second.text}
    assert shown == urls

    forged = await browser.get("/account/data/web_analytics?after=AAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status_code == 400 and "This page link is not valid" in forged.text
    other_list = next_url.replace("web_analytics?", "device?")
    assert (await browser.get(other_list)).status_code == 400
    for bad in (
        "/account/data/nope",
        "/account/data/device?after=%00",
        "/account/data/device?back=" + "a." * 30,
    ):
        assert (await browser.get(bad)).status_code == 404


async def test_own_recordings_only(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer, person: Person
) -> None:
    await sign_in(account_app, browser, issuer, person.handle)
    ((name, content),) = person.data.files.items()
    r = await browser.get(f"/account/recordings/{name}")
    assert r.status_code == 200 and r.content == content
    assert r.headers["cache-control"] == "no-store"
    alice_file = next(iter(build_subject("alice", full=True, sensitive=True).files))
    for other in (alice_file, "../secret.key", "nope.png"):
        assert (await browser.get(f"/account/recordings/{other}")).status_code == 404


async def test_every_page_is_private_and_strict(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer, person: Person
) -> None:
    anonymous = await browser.get("/account")
    await sign_in(account_app, browser, issuer, person.handle)
    for r in (
        anonymous,
        await browser.get("/account"),
        await browser.get("/account/data/profile"),
        await browser.get("/account/exports/not-an-id"),
    ):
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
        assert "<script>" not in r.text and " style=" not in r.text and "onclick" not in r.text
        assert '<html lang="en">' in r.text and 'href="#main"' in r.text
    css = await browser.get("/account/static/account.css")
    assert css.status_code == 200 and css.headers["cache-control"] == "no-cache"


async def test_a_login_linked_to_no_data(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    await sign_in(account_app, browser, issuer, "nobody-at-all")
    r = await browser.get("/account")
    assert r.status_code == 200 and "We hold no personal data linked to this sign-in" in r.text


async def test_who_looked_lists_partners_and_support_not_the_person(
    account_app: Starlette,
    browser: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    owner_db: asyncpg.Pool,
) -> None:
    db = owner_db
    agent = SupportAgent(issuer="https://issuer.test", sub="agent-7", scopes=frozenset())
    named = f"looked-{uuid4().hex[:8]}"
    await add_partner(
        db,
        account_app.state.services.catalogue,
        client_id=named,
        issuer="https://issuer.test",
        name="Other Bank Ltd",
        categories=["profile"],
    )
    partner = Partner(issuer="https://issuer.test", client_id="partner-unregistered")
    me = Customer(issuer="https://issuer.test", sub=person.handle, subject_id=person.data.id)
    for who, action, purpose in (
        (agent, Action.SUBJECT_READ, {"ticket": "T-4711", "reason": "asked about a refund"}),
        (partner, Action.TRANSFER_DOWNLOAD, {}),
        (Partner(issuer="https://issuer.test", client_id=named), Action.TRANSFER_START, {}),
        (me, Action.EXPORT_REQUEST, {}),
    ):
        await record(
            db,
            request_id="test",
            actor=who,
            subject_id=person.data.id,
            action=action,
            outcome="allowed",
            purpose=purpose,
            categories=["profile", "payment"],
        )
    await sign_in(account_app, browser, issuer, person.handle)
    section = text_of((await browser.get("/account")).text).split("Who looked at your data")[-1]
    assert "Our support staff, ticket T-4711" in section and "Looked at your data" in section
    assert "Partner partner-unregistered" in section and "Began receiving a transfer" in section
    assert f"Other Bank Ltd (partner {named})" in section
    assert "Profile or Contact Data, Payment Data" in section
    assert "Asked for a copy" not in section  # the person's own doings are theirs to know
    assert "agent-7" not in section and "asked about a refund" not in section
