"""Refused downloads are audited as refusals, with why; the person's access log shows what the
partner was actually sent (issue 22, item 5)."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from tests.reliability._people import START, auth, gql, grant, partner, people
from tests.reliability.conftest import ServerFactory

TRIES = 20
ACCESS_LOG = """
{ me { accessLog(first: 100) { action outcome refusal ending sentBytes partner } } }
"""


async def test_concurrent_downloads_of_one_link_are_audited_as_what_each_got(
    start_server: ServerFactory,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
    deployment: Deployment,
) -> None:
    server = await start_server()
    client_id = await partner(deployment.migration_dsn, catalogue)
    token = issuer.mint("partner", client_id)
    [(_, person)] = await people(stores, catalogue, issuer, 1)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        grant_id = await grant(client, person, client_id)
        started = (await gql(client, token, START, grant=grant_id))["startTransfer"]
        answers = await asyncio.gather(
            *(client.get(started["downloadUrl"], headers=auth(token)) for _ in range(TRIES))
        )
        statuses = Counter(r.status_code for r in answers)
        # One stream at a time; a link serves up to 3 whole bundles (DSAR_DOWNLOADS_PER_LINK),
        # so a try that comes after a finished one may stream too.
        whole = [len(r.content) for r in answers if r.status_code == 200]
        assert 1 <= len(whole) <= 3 and statuses[409] + statuses[410] == TRIES - len(whole)
        log = (await gql(client, person, ACCESS_LOG))["me"]["accessLog"]
    mine = [e for e in log if e["partner"] == client_id and e["action"] != "transfer.start"]
    allowed = [e for e in mine if e["action"] == "transfer.download" and e["outcome"] == "allowed"]
    refused = [e for e in mine if e["outcome"] == "denied"]
    sent = [e for e in mine if e["action"] == "transfer.sent"]
    assert len(allowed) == len(whole), mine
    assert len(refused) == TRIES - len(whole)
    assert {e["refusal"] for e in refused} <= {"busy", "gone"}
    assert sorted((e["outcome"], e["ending"], e["sentBytes"]) for e in sent) == sorted(
        ("allowed", "complete", n) for n in whole
    )
    conn = await asyncpg.connect(deployment.migration_dsn)
    try:
        rows = await conn.fetch(
            "SELECT action, outcome, purpose FROM audit_log WHERE purpose->>'export_id' = $1",
            started["id"],
        )
    finally:
        await conn.close()
    outcomes = Counter((r["action"], r["outcome"]) for r in rows)
    assert outcomes == {
        ("transfer.download", "allowed"): len(whole),
        ("transfer.download", "denied"): TRIES - len(whole),
        ("transfer.sent", "allowed"): len(whole),
        # The transfer's request, answered once by the first whole copy.
        **({("request.complete", "allowed"): 1} if whole else {}),
    }, outcomes
