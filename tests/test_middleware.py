"""The edge's slots of requests served at once (api/admission.py): some are kept for a person's
own queries, and a request asks for one only once its body has arrived."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.responses import JSONResponse

from api.admission import Admission
from api.metrics import Metrics
from api.middleware import EdgeMiddleware
from domain.budget import ExportBudget


async def test_places_are_kept_for_authenticated_queries() -> None:
    release = asyncio.Event()
    arrived: asyncio.Queue[None] = asyncio.Queue()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):  # the whole body, as every handler reads it
            pass
        arrived.put_nowait(None)
        await release.wait()
        await JSONResponse({"ok": True})(scope, receive, send)

    admission = Admission(slots=4, wait=0.2)
    app = EdgeMiddleware(slow, metrics=Metrics(), max_body=1024, admission=admission, reserved=2)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        # Two long requests of any kind take the two places open to everyone.
        long = [asyncio.create_task(c.get(f"/exports/{n}")) for n in range(2)]
        for _ in long:
            await arrived.get()
        shed = await c.get("/exports/3")
        anonymous = await c.post("/graphql", json={"query": "{ me { id } }"})
        # A query with a bearer token still gets one of the kept places.
        query = asyncio.create_task(
            c.post(
                "/graphql",
                json={"query": "{ me { id } }"},
                headers={"Authorization": "Bearer x"},
            )
        )
        await arrived.get()
        release.set()
        answers = await asyncio.gather(*long, query)
    assert (shed.status_code, anonymous.status_code) == (503, 503)
    assert shed.headers["Retry-After"] == "1"
    assert [r.status_code for r in answers] == [200, 200, 200]


async def test_the_edges_own_refusals_are_a_page_where_people_browse() -> None:
    """A body over the cap on a page is answered with a page; on the API, with JSON."""

    async def never(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the edge answers first")

    app = EdgeMiddleware(
        never, metrics=Metrics(), max_body=16, admission=Admission(slots=4, wait=0.2), reserved=0
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        page = await c.post("/account/exports", content=b"x" * 64)
        api = await c.post("/graphql", content=b"x" * 64)
    assert page.status_code == api.status_code == 413
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "The request body is larger than allowed." in page.text and "{" not in page.text
    assert page.headers["content-security-policy"] == "default-src 'none'; style-src 'self'"
    assert api.json()["error"] == "request_too_large"


async def test_a_small_query_counts_for_exports_from_its_whole_body_to_its_last_byte() -> None:
    """Exports give way to small queries (domain/budget.py): a body trickled in is no query
    yet, and an answer handed whole to the connection is no longer one, so neither a client
    that trickles nor one that does not read holds every export of the process up."""
    budget = ExportBudget()
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body", False):
            pass
        seen.append(budget.small)  # being answered: counted
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        seen.append(budget.small)
        await send({"type": "http.response.body", "body": b"}"})
        seen.append(budget.small)  # the last byte is the connection's now

    edge = EdgeMiddleware(app, metrics=Metrics(), max_body=1024, budget=budget)
    trickle = asyncio.Event()
    parts = [
        {"type": "http.request", "body": b'{"query":', "more_body": True},
        {"type": "http.request", "body": b' "{ me { id } }"}', "more_body": False},
    ]

    async def receive() -> dict[str, Any]:
        if len(parts) == 1:
            await trickle.wait()
        return parts.pop(0)

    async def send(message: Any) -> None:
        return None

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [
            (b"authorization", b"Bearer x"),
            (b"content-type", b"application/json"),
            (b"content-length", b"26"),
        ],
    }
    task = asyncio.create_task(edge(scope, receive, send))
    for _ in range(20):
        await asyncio.sleep(0)
    assert budget.small == 0  # half a body: not counted
    trickle.set()
    await task
    assert seen == [1, 1, 0]
    assert budget.small == 0
