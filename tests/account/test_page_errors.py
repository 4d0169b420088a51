"""When the service database stops answering, the account page is still a page (never the
edge's JSON), and `/` leads a visitor to it."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from api.devissuer import DevIssuer

from .conftest import sign_in


async def test_the_front_door_leads_to_the_account_page(browser: httpx.AsyncClient) -> None:
    answer = await browser.get("/")
    assert answer.status_code == 302
    assert answer.headers["location"] == "/account"


async def test_a_database_that_stops_answering_is_a_page_not_json(
    account_app: Starlette, browser: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    await sign_in(account_app, browser, issuer, "alice")
    assert (await browser.get("/account")).status_code == 200
    # As when the database server goes away under a running server (this app is the test's).
    await account_app.state.services.db.close()
    for path in ("/account", "/account/data/profile"):
        answer = await browser.get(path)
        assert answer.status_code == 503, path
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["retry-after"] == "30"
        assert "content-security-policy" in answer.headers
        assert "This page cannot be shown right now" in answer.text
        assert '"errors"' not in answer.text
