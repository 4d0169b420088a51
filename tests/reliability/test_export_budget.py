"""Exports cannot starve small queries (issue 19, item 4): four people download their exports at
once while a fifth asks small queries; the exports give way to them between chunks
(domain/budget.py), the small queries are answered while the exports still stream, and every
export still arrives whole.
"""

from __future__ import annotations

import asyncio
import re

import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.registry import Stores
from tests.reliability._people import auth, download, people, request_export
from tests.reliability.conftest import ServerFactory
from tests.reliability.faultproxy import FaultProxy

EXPORTS = 4
# Every database chunk waits this long once the downloads start, so that the exports stream
# for seconds and the small queries stay in flight long enough to be seen by them.
SLOW = 0.03
SMALL = "{ me { profile { firstName } } }"


def gave_way(metrics: str) -> float:
    found = re.search(r"^dsar_export_gave_way_total (\S+)$", metrics, re.MULTILINE)
    assert found is not None, "the budget's counter is not in /metrics"
    return float(found.group(1))


async def test_small_queries_are_answered_while_four_exports_stream_and_the_exports_end_whole(
    start_server: ServerFactory,
    proxy: FaultProxy,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
) -> None:
    server = await start_server(proxy=proxy, env={"DSAR_EXPORT_ACTIVE": "2"})
    crowd = await people(stores, catalogue, issuer, EXPORTS + 1)
    (_, asker), exporters = crowd[0], crowd[1:]
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        before = gave_way((await client.get("/metrics")).text)
        links = [(await request_export(client, t))["downloadUrl"] for _, t in exporters]
        proxy.latency(SLOW)
        try:
            downloads = [
                asyncio.create_task(download(client, url, t))
                for url, (_, t) in zip(links, exporters, strict=True)
            ]
            answered_while_streaming = 0
            while not all(d.done() for d in downloads):
                r = await client.post("/graphql", json={"query": SMALL}, headers=auth(asker))
                assert r.status_code == 200 and "errors" not in r.json(), r.text[:300]
                if not any(d.done() for d in downloads):
                    answered_while_streaming += 1
            results = await asyncio.gather(*downloads)
        finally:
            proxy.pass_()
        after = gave_way((await client.get("/metrics")).text)
    print(
        f"\n{EXPORTS} exports, {SLOW * 1000:.0f} ms per database chunk: {answered_while_streaming}"
        f" small queries answered while all streamed; exports gave way {after - before:.0f} times"
    )
    assert [r for r, _ in results] == ["whole"] * EXPORTS, results
    assert answered_while_streaming >= 1
    assert after > before, "no export gave way to the small queries in flight"
