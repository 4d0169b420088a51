"""GraphiQL exists in development only: `GET /graphql` asking for HTML, with a demo token."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.settings import Settings
from stores.deployment import Deployment
from stores.registry import Stores

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
async def dev_client(
    settings: Settings, deployment: Deployment, stores: Stores
) -> AsyncIterator[httpx.AsyncClient]:
    app: Starlette = create_app(replace(settings, dev_issuer=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def demo_token(page: str) -> str:
    found = re.search(r"Bearer ([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", page)
    assert found, "no demo token on the page"
    return found.group(1)


async def test_development_serves_graphiql_signed_in_as_a_demo_person(
    dev_client: httpx.AsyncClient,
) -> None:
    r = await dev_client.get("/graphql", headers=HTML)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "<title>dsar GraphiQL</title>" in r.text
    assert "Development only." in r.text and "Asking as <strong>alice</strong>" in r.text
    # The helper's token is accepted as a customer's; introspection (GraphiQL's docs) is on.
    token = demo_token(r.text)
    me = await dev_client.post(
        "/graphql",
        json={"query": "{ me { profile { firstName } } __schema { queryType { name } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert me.status_code == 200, me.text
    assert me.json()["data"]["__schema"] == {"queryType": {"name": "Query"}}
    # A customer's token (the tests link the demo people to their own issuer, so `me` is null).
    assert "errors" not in me.json() and "me" in me.json()["data"]


async def test_the_page_fetches_nothing_from_outside_and_its_files_match_their_hashes(
    dev_client: httpx.AsyncClient,
) -> None:
    page = (await dev_client.get("/graphql", headers=HTML)).text
    fetched = re.findall(r'(?:src|href)="([^"]+)"', page)
    external = [u for u in fetched if not u.startswith(("/", "data:", "?"))]
    assert external == []
    assets = re.findall(r'(?:src|href)="(/graphql/assets/[^"]+)"\s+integrity="([^"]+)"', page)
    # ...every <script> and stylesheet, each pinned by the hash Strawberry's page gives it.
    assert len(assets) == 6 == page.count("integrity=")
    for url, integrity in assets:
        r = await dev_client.get(url)
        assert r.status_code == 200, url
        digest = base64.b64encode(hashlib.sha384(r.content).digest()).decode()
        assert integrity == f"sha384-{digest}", url
    assert (
        "unpkg"
        not in (await dev_client.get("/graphql", headers=HTML)).headers["content-security-policy"]
    )


async def test_the_helper_switches_person_among_the_demo_people_only(
    dev_client: httpx.AsyncClient,
) -> None:
    bob = await dev_client.get("/graphql?as=bob", headers=HTML)
    assert "Asking as <strong>bob</strong>" in bob.text
    claims = orjson.loads(_b64(demo_token(bob.text).split(".")[1]))
    assert claims["sub"] == "bob"
    stranger = await dev_client.get("/graphql?as=<script>", headers=HTML)
    assert "Asking as <strong>alice</strong>" in stranger.text
    assert "<script>" not in stranger.text.split("<body>", 1)[1].split("<script", 1)[0]


async def test_development_still_refuses_get_for_graphql_itself(
    dev_client: httpx.AsyncClient,
) -> None:
    r = await dev_client.get("/graphql", params={"query": "{ __typename }"})
    assert r.status_code == 405


async def test_outside_development_there_is_no_graphiql(client: httpx.AsyncClient) -> None:
    r = await client.get("/graphql", headers=HTML)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert "GraphiQL" not in r.text and "Bearer" not in r.text
    assert (await client.get("/graphql/assets/graphiql.min.js")).status_code == 404


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
