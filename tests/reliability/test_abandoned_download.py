"""A download the client abandons is not recorded as received, and the link serves a retry
(issue 22, item 3).

The client reads 200 bytes and hangs up. The server may well have handed the whole (small)
bundle to the socket by then, so "sent in full" is not "received": the link serves up to
`DSAR_DOWNLOADS_PER_LINK` whole bundles, each audited, and the row says what was sent.
"""

from __future__ import annotations

import io
import zipfile
from uuid import UUID

import asyncpg
import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from tests.reliability._client import wait_until
from tests.reliability._people import auth, people, request_export
from tests.reliability.conftest import ServerFactory


async def test_a_download_abandoned_after_200_bytes_can_be_retried(
    start_server: ServerFactory,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
    deployment: Deployment,
) -> None:
    server = await start_server(env={"DSAR_DOWNLOADS_PER_LINK": "2"})
    [(_, token)] = await people(stores, catalogue, issuer, 1)
    conn = await asyncpg.connect(deployment.migration_dsn)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            export = await request_export(client, token)
            eid = UUID(export["id"])
            async with client.stream("GET", export["downloadUrl"], headers=auth(token)) as r:
                assert r.status_code == 200
                # Read 200 bytes, and no more: the connection stays open, unread.
                raw = r.aiter_raw(200)
                got = await anext(raw)

                # The server hands the rest to the socket (the bundle fits in its buffers)
                # while the client holds 200 bytes; then the client hangs up, the rest unread.
                async def ended() -> bool:
                    status = await conn.fetchval("SELECT status FROM exports WHERE id = $1", eid)
                    return bool(status != "running")

                await wait_until(ended, within=30, what="the abandoned download's end")
            first = await conn.fetchrow(
                "SELECT status, sent_bytes, full_sends FROM exports WHERE id = $1", eid
            )
            # What was sent, not what was received: the server cannot know the difference.
            assert first is not None and first["sent_bytes"] > len(got), dict(first or {})
            assert (first["status"], first["full_sends"]) == ("completed", 1), dict(first)
            # The person retries and gets the whole bundle.
            again = await client.get(export["downloadUrl"], headers=auth(token))
            assert again.status_code == 200
            zipfile.ZipFile(io.BytesIO(again.content)).testzip()
            # The bound holds: two whole bundles sent, the link is spent.
            spent = await client.get(export["downloadUrl"], headers=auth(token))
            assert spent.status_code == 410
        row = await conn.fetchrow(
            "SELECT status, bytes, sent_bytes, full_sends FROM exports WHERE id = $1", eid
        )
        assert row is not None and row["status"] == "completed" and row["full_sends"] == 2
        assert row["sent_bytes"] == row["bytes"] == len(again.content)
        ends = await conn.fetch(
            "SELECT purpose->>'ending' AS ending, purpose->>'sent_bytes' AS sent FROM audit_log "
            "WHERE action = 'export.sent' AND purpose->>'export_id' = $1 ORDER BY seq",
            str(eid),
        )
    finally:
        await conn.close()
    # Every download's end is audited with what it sent.
    assert [(e["ending"], int(e["sent"])) for e in ends] == [
        ("complete", first["sent_bytes"]),
        ("complete", len(again.content)),
    ]
