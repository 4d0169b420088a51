"""GraphiQL under the development issuer, in a real browser with no network: it loads from dsar
alone, runs a query with its demo token, and shows the answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.async_api import BrowserContext, Request

from api.settings import Settings
from stores.deployment import Deployment
from stores.registry import Stores

from .conftest import ServerThread


@pytest.fixture(scope="module")
def dev_live(settings: Settings, deployment: Deployment, stores: Stores) -> Iterator[ServerThread]:
    with ServerThread(replace(settings, dev_issuer=True)) as server:
        yield server


async def test_graphiql_loads_offline_and_answers_with_the_demo_token(
    dev_live: ServerThread, context: BrowserContext, artifacts: Path
) -> None:
    outside: list[str] = []

    def seen(request: Request) -> None:
        if urlsplit(request.url).hostname != "127.0.0.1":
            outside.append(request.url)

    page = await context.new_page()
    page.on("request", seen)
    query = "{ dataCategories { key } }"
    await page.goto(f"{dev_live.url}/graphql?q={quote(query)}")
    await page.get_by_text("Development only.").wait_for()
    await page.locator(".graphiql-execute-button").click()
    result = page.locator(".result-window")
    await result.get_by_text('"web_analytics"').wait_for(timeout=15_000)
    await page.screenshot(path=str(artifacts / "graphiql.png"))
    assert outside == []
