"""The account page's sign-in against the real provider, step by step over HTTP (no browser):
authorization code + PKCE on the server, state and nonce checked, step-up and sign-out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.settings import Settings
from stores.deployment import Deployment
from stores.registry import Stores
from tests.account.conftest import COOKIE, csrf_of, form
from tests.auth.idp import STRONG, IdP

from .conftest import PAGE_CLIENT, Person, page_settings

ORIGIN = "http://127.0.0.1"  # where the page is served in these tests (no port: ASGI)


@pytest.fixture
async def page_app(
    settings: Settings, deployment: Deployment, stores: Stores, account_idp: IdP
) -> AsyncIterator[Starlette]:
    app = create_app(page_settings(settings, account_idp))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def browser(page_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=page_app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        yield client


async def through_provider(url: str) -> str:
    """The browser's trip through the provider (its headless login, its silent consent) until
    it is sent back to the page; returns where to."""
    async with httpx.AsyncClient() as idp_side:
        r = await idp_side.get(url)
        for _ in range(10):
            location = r.headers.get("location", "")
            if location.startswith(ORIGIN + "/"):
                return location
            assert r.status_code in (302, 303), r.text[:300]
            r = await idp_side.get(urljoin(str(r.url), location))
    raise AssertionError("the provider never sent the browser back")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_code_flow_with_pkce_on_the_server(
    browser: httpx.AsyncClient, account_idp: IdP, person: Person
) -> None:
    start = await browser.get(
        "/account/login", params={"login_hint": f"{person.handle}|{STRONG}|0"}
    )
    assert start.status_code == 302
    to_idp = start.headers["location"]
    assert to_idp.startswith(account_idp.issuer + "/auth?")
    params = query(to_idp)
    assert params["client_id"] == PAGE_CLIENT and params["response_type"] == "code"
    assert params["redirect_uri"] == ORIGIN + "/account/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["scope"] == "openid dsar:self" and params["nonce"] and params["state"]
    assert "code_verifier" not in to_idp

    back = await through_provider(to_idp)
    assert back.startswith(ORIGIN + "/account/callback?") and "code" in query(back)
    before = browser.cookies[COOKIE]
    done = await browser.get(back)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert browser.cookies[COOKIE] != before
    page = await browser.get("/account")
    assert person.marker in page.text
    assert "eyJ" not in page.text and "eyJ" not in done.headers.get("set-cookie", "")

    replayed = await browser.get(back)  # the state is spent, and so is the code
    assert replayed.status_code == 400 and "Sign-in did not finish" in replayed.text
    assert person.marker in (await browser.get("/account")).text  # still the same session


async def test_a_callback_it_did_not_start_is_refused(
    browser: httpx.AsyncClient, page_app: Starlette, person: Person
) -> None:
    start = await browser.get(
        "/account/login", params={"login_hint": f"{person.handle}|{STRONG}|0"}
    )
    back = await through_provider(start.headers["location"])
    state = query(back)["state"]
    for bad in (
        back.replace(f"state={state}", "state=forged"),
        f"{ORIGIN}/account/callback?error=access_denied&state={state}",
    ):
        r = await browser.get(bad)
        assert r.status_code == 400 and "Sign-in did not finish" in r.text
        assert "access_denied" not in r.text
    stranger = httpx.AsyncClient(transport=httpx.ASGITransport(app=page_app), base_url=ORIGIN)
    async with stranger:
        r = await stranger.get(back)  # another browser, without the session it began in
    assert r.status_code == 400
    assert person.marker not in (await browser.get("/account")).text


async def test_step_up_asks_the_provider_for_a_strong_recent_login(
    browser: httpx.AsyncClient, person: Person
) -> None:
    weak = await browser.get(
        "/account/login", params={"login_hint": f"{person.handle}|urn:dsar:acr:weak|0"}
    )
    await browser.get(await through_provider(weak.headers["location"]))
    page = await browser.get("/account")
    ask = await browser.post(
        "/account/exports", **form(csrf=csrf_of(page.text), format="csv", purpose="access")
    )
    assert ask.status_code == 303 and ask.headers["location"].startswith("/account/login?step_up=1")
    step_up = await browser.get(ask.headers["location"])
    params = query(step_up.headers["location"])
    assert params["acr_values"] == STRONG and params["max_age"] == "900"
    assert params["prompt"] == "login" and params["login_hint"] == person.handle
    back = await browser.get(await through_provider(step_up.headers["location"]))
    assert back.status_code == 303 and back.headers["location"].endswith("?start=1")
    zipped = await browser.get(back.headers["location"].replace("?start=1", "/download"))
    assert zipped.status_code == 200 and zipped.content[:2] == b"PK"


async def test_sign_out_also_ends_the_providers_session(
    browser: httpx.AsyncClient, account_idp: IdP, person: Person
) -> None:
    start = await browser.get(
        "/account/login", params={"login_hint": f"{person.handle}|{STRONG}|0"}
    )
    await browser.get(await through_provider(start.headers["location"]))
    page = await browser.get("/account")
    r = await browser.post("/account/logout", **form(csrf=csrf_of(page.text)))
    assert r.status_code == 303
    assert r.headers["location"].startswith(account_idp.issuer + "/session/end?")
    assert query(r.headers["location"]) == {
        "client_id": PAGE_CLIENT,
        "post_logout_redirect_uri": ORIGIN + "/account/signed-out",
    }
    assert person.marker not in (await browser.get("/account")).text


async def test_a_provider_that_does_not_answer_is_a_friendly_503(
    settings: Settings, deployment: Deployment, stores: Stores, account_idp: IdP
) -> None:
    down = replace(page_settings(settings, account_idp), issuers=("http://127.0.0.1:9",))
    app = create_app(down)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
            r = await client.get("/account/login")
    assert r.status_code == 503 and r.headers["retry-after"] == "30"
    assert "Signing in is not available right now" in r.text
