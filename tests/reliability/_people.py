"""Fresh people, a partner and grants for a test against a running server."""

from __future__ import annotations

import io
import secrets
import time
import zipfile
from typing import Any
from uuid import uuid4

import asyncpg
import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from domain.partners import add_partner
from stores.registry import Stores
from tests._factories import insert_marked
from tests._tokens import TEST_ISSUER

GRANT = """
mutation($input: GrantInput!) { grantPortability(input: $input) {
  __typename ... on PortabilityGrant { id } } }
"""
START = """
mutation($grant: ID!) { startTransfer(grant: $grant, full: true) {
  __typename ... on Export { id downloadUrl } ... on TransferLimitReached { retryAfter } } }
"""
REQUEST = """
mutation { requestExport(input: {format: JSON}) {
  __typename ... on Export { id status downloadUrl } } }
"""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def gql(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=auth(token)
    )
    body = r.json()
    assert r.status_code in (200, 429) and "errors" not in body, (r.status_code, r.text[:300])
    return body["data"]


async def people(
    stores: Stores, catalogue: Catalogue, issuer: DevIssuer, n: int
) -> list[tuple[str, str]]:
    """`n` fresh people of this test alone: (handle, customer token) each."""
    out = []
    for i in range(n):
        handle = f"rel-p-{uuid4().hex[:10]}"
        await insert_marked(stores, catalogue, handle, f"RLP{secrets.token_hex(4).upper()}", 90 + i)
        out.append((handle, issuer.mint("customer", handle)))
    return out


async def partner(service_dsn: str, catalogue: Catalogue) -> str:
    """A partner of this test alone, at the test issuer; its client id."""
    client_id = f"rel-partner-{uuid4().hex[:8]}"
    conn = await asyncpg.connect(service_dsn)
    try:
        await add_partner(
            conn,
            catalogue,
            client_id=client_id,
            issuer=TEST_ISSUER,
            name=client_id.upper(),
            categories=["profile", "web_analytics"],
        )
    finally:
        await conn.close()
    return client_id


async def grant(client: httpx.AsyncClient, token: str, partner_id: str) -> str:
    data = await gql(client, token, GRANT, input={"partner": partner_id, "categories": ["profile"]})
    assert data["grantPortability"]["__typename"] == "PortabilityGrant", data
    return str(data["grantPortability"]["id"])


async def request_export(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    export: dict[str, Any] = (await gql(client, token, REQUEST))["requestExport"]
    assert export["__typename"] == "Export", export
    return export


async def download(client: httpx.AsyncClient, url: str, token: str) -> tuple[str, float]:
    """How a download ended (`whole`, `refused before headers`, `200 but truncated`, `cut
    off (...)`, `status N`) and how long it took."""
    started = time.monotonic()
    try:
        r = await client.get(url, headers=auth(token))
    except httpx.TransportError as exc:  # the server cut the response off mid-way
        return f"cut off ({type(exc).__name__})", time.monotonic() - started
    took = time.monotonic() - started
    if r.status_code == 503:
        assert int(r.headers["Retry-After"]) >= 1
        return "refused before headers", took
    if r.status_code != 200:
        return f"status {r.status_code}", took
    try:
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            assert z.testzip() is None and "manifest.json" in z.namelist()
    except (zipfile.BadZipFile, AssertionError):
        return "200 but truncated", took
    return "whole", took
