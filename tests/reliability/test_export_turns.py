"""Exports beyond a store's pool take turns (issue 22, item 4): more people than a store's
pool holds (12 against 10, and 6 export streams) download their exports at once while the
databases answer slowly, and each download either completes (a whole, valid ZIP) or is
refused before its headers (503 with `Retry-After`); never a 200 that ends truncated because
a store's pool (10 connections, 2 s to get one) ran dry mid-stream.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.registry import Stores
from tests.reliability._people import download, people, request_export
from tests.reliability.conftest import ServerFactory
from tests.reliability.faultproxy import FaultProxy

PEOPLE = 12
# Every chunk from every database waits this long once the downloads start: each export then
# holds a store's connection long enough (seconds) for 12 of them to outlast a pool of 10 and
# the short wait for a turn below: some complete and some are refused, so both paths run.
SLOW = 0.02
WAIT = 2


async def test_concurrent_exports_beyond_the_pool_complete_or_are_refused_before_headers(
    start_server: ServerFactory,
    proxy: FaultProxy,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
) -> None:
    # A short wait for a turn keeps the test short; the default is 30 s.
    server = await start_server(proxy=proxy, env={"DSAR_EXPORT_WAIT": str(WAIT)})
    crowd = await people(stores, catalogue, issuer, PEOPLE)
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        links = [(await request_export(client, t))["downloadUrl"] for _, t in crowd]
        proxy.latency(SLOW)
        try:
            results = await asyncio.gather(
                *(download(client, url, t) for url, (_, t) in zip(links, crowd, strict=True))
            )
        finally:
            proxy.pass_()
    outcomes = Counter(r for r, _ in results)
    print(
        f"\n{PEOPLE} concurrent exports, {SLOW * 1000:.0f} ms per database chunk: "
        f"{dict(outcomes)}, slowest {max(t for _, t in results):.1f} s"
    )
    assert set(outcomes) <= {"whole", "refused before headers"}, outcomes
    assert outcomes["whole"] >= 1
    assert outcomes["refused before headers"] >= 1
