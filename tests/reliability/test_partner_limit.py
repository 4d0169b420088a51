"""A partner's transfer limit holds under concurrent starts on different grants (issue 22, 6).

The limit counts a partner's transfers of every person, so it is checked and the transfer
inserted under the partner's lock: concurrent `startTransfer` calls on grants of different
people (each under its own person's lock) cannot all see the same count.
"""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from tests.reliability._people import START, auth, grant, partner, people
from tests.reliability.conftest import ServerFactory

LIMIT = 3


async def test_four_concurrent_transfers_against_a_limit_of_three_create_three(
    start_server: ServerFactory,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
    deployment: Deployment,
) -> None:
    server = await start_server(env={"DSAR_PARTNER_TRANSFERS_PER_MINUTE": str(LIMIT)})
    client_id = await partner(deployment.migration_dsn, catalogue)
    token = issuer.mint("partner", client_id)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        grants = [
            await grant(client, t, client_id)
            for _, t in await people(stores, catalogue, issuer, LIMIT + 1)
        ]
        answers = await asyncio.gather(
            *(
                client.post(
                    "/graphql",
                    json={"query": START, "variables": {"grant": g}},
                    headers=auth(token),
                )
                for g in grants
            )
        )
        kinds = sorted(r.json()["data"]["startTransfer"]["__typename"] for r in answers)
        assert kinds == ["Export"] * LIMIT + ["TransferLimitReached"], kinds
        refused = next(r for r in answers if r.status_code == 429)
        assert int(refused.headers["Retry-After"]) >= 1
        metrics = (await client.get("/metrics")).text
    conn = await asyncpg.connect(deployment.migration_dsn)
    try:
        created = await conn.fetchval(
            "SELECT count(*) FROM exports WHERE recipient->>'client_id' = $1", client_id
        )
    finally:
        await conn.close()
    assert created == LIMIT
    assert 'dsar_limit_reached_total{limit="partner_transfers_per_minute"} 1.0' in metrics
    hits = [r for r in server.log_records() if r.get("msg") == "limit reached"]
    assert [h.get("event") for h in hits] == ["partner_transfers_per_minute"]
    # The line names the limit and nothing of the partner or the people.
    assert client_id not in str(hits)
