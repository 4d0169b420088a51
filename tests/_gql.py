"""GraphQL over the test app's HTTP: a bearer token, and the `data` of an answer without errors."""

from __future__ import annotations

from typing import Any

import httpx


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def data(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=auth(token)
    )
    body = r.json()
    assert "errors" not in body, body
    return body["data"]
