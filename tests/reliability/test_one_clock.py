"""One clock: the database's judges expiry, leases and limits (issue 22, item 7).

The server runs with its wall clock 5 minutes behind the database's (`DSAR_TEST_CLOCK_SKEW`,
test-only). A link and a grant that expired a minute ago by the database's clock are still
valid by the server's own: they must be expired all the same, everywhere.
"""

from __future__ import annotations

import time
from collections import Counter
from uuid import UUID

import asyncpg
import httpx
import time_machine

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from tests.reliability._people import gql, grant, partner, people, request_export
from tests.reliability.conftest import ServerFactory

SKEW = -300
EXPORT = "query($id: ID!) { export(id: $id) { status downloadUrl } }"
GRANTS = "{ portabilityGrants { id status } }"
TRANSFERS = "{ portabilityTransfers { grant } }"


async def test_expiry_is_judged_by_the_databases_clock_not_the_servers(
    start_server: ServerFactory,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
    deployment: Deployment,
) -> None:
    server = await start_server(env={"DSAR_TEST_CLOCK_SKEW": str(SKEW)})
    [(handle, _)] = await people(stores, catalogue, issuer, 1)
    client_id = await partner(deployment.migration_dsn, catalogue)
    # Tokens as an issuer in step with the server would mint them (their `iat` is checked
    # against the server's clock, with 60 s of leeway).
    with time_machine.travel(time.time() + SKEW, tick=True):
        token = issuer.mint("customer", handle)
        partner_token = issuer.mint("partner", client_id)
    conn = await asyncpg.connect(deployment.migration_dsn)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            export = await request_export(client, token)
            grant_id = await grant(client, token, client_id)
            # Expired a minute ago by the database's clock; four minutes from now by the server's.
            await conn.execute(
                "UPDATE exports SET expires_at = now() - interval '1 minute' WHERE id = $1",
                UUID(export["id"]),
            )
            await conn.execute(
                "UPDATE grants SET created_at = now() - interval '2 minutes', "
                "expires_at = now() - interval '1 minute' WHERE id = $1",
                UUID(grant_id),
            )
            seen = (await gql(client, token, EXPORT, id=export["id"]))["export"]
            assert seen == {"status": "EXPIRED", "downloadUrl": None}
            r = await client.get(
                f"/exports/{export['id']}", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 410, (r.status_code, r.text[:200])
            grants = (await gql(client, token, GRANTS))["portabilityGrants"]
            assert [g["status"] for g in grants if g["id"] == grant_id] == ["EXPIRED"]
            assert (await gql(client, partner_token, TRANSFERS))["portabilityTransfers"] == []
        rows = await conn.fetch(
            "SELECT action, outcome, purpose->>'refusal' AS refusal FROM audit_log "
            "WHERE purpose->>'export_id' = $1 AND action = 'export.download'",
            export["id"],
        )
    finally:
        await conn.close()
    assert Counter((r["outcome"], r["refusal"]) for r in rows) == {("denied", "gone"): 1}
    # The server's clock really was behind: its log lines are stamped by it.
    stamps = [r["ts"] for r in server.log_records()]
    assert stamps and max(stamps) < time.time() + SKEW + 60
