"""The security probe of issue 18, item 5, against a running server (`dsar serve` in its own
process, as the service's own database role): while the audit log takes no rows, a grant, a
partner's transfer and an agent's export are refused with 503, and none of them stays in the
database; once the log is back, the same requests succeed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from tests.reliability._people import GRANT, START, auth, grant, partner, people
from tests.reliability.conftest import ServerFactory

_APPEND = "audit_append(text, jsonb, uuid, text, jsonb, text[], text)"
EXPORT_FOR = """
mutation($subject: ID!, $access: SupportAccess!) {
  requestExportFor(subject: $subject, access: $access, input: {format: JSON},
                   verification: {method: EMAIL_CONFIRMED}) {
    __typename ... on OpenedExport { id } } }
"""
FIND = """
query($email: String!, $access: SupportAccess!) { findSubjects(email: $email, access: $access) {
  id } }
"""


@asynccontextmanager
async def audit_down(dsn: str) -> AsyncIterator[None]:
    """The audit log's only writer is gone (as the owner: the service's role cannot do this)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"ALTER FUNCTION {_APPEND} RENAME TO audit_append_down")
        try:
            yield
        finally:
            await conn.execute(
                f"ALTER FUNCTION {_APPEND.replace('audit_append', 'audit_append_down')} "
                "RENAME TO audit_append"
            )
    finally:
        await conn.close()


async def post(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=auth(token)
    )


def refused(r: httpx.Response) -> bool:
    return r.status_code == 503 and r.headers["retry-after"].isdigit()


async def test_no_grant_transfer_or_agent_export_stays_without_its_audit_row(
    start_server: ServerFactory,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
    deployment: Deployment,
) -> None:
    server = await start_server()
    owner = deployment.migration_dsn
    client_id = await partner(owner, catalogue)
    partner_token = issuer.mint("partner", client_id)
    agent = issuer.mint("support", "agent-fails-closed")
    [(handle, person)] = await people(stores, catalogue, issuer, 1)
    subject = await stores.subject_by_handle(handle)
    assert subject is not None
    access = {"ticket": "SEC-5", "reason": "The person asked for a copy by phone."}
    db = await asyncpg.connect(owner)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            live = await grant(client, person, client_id)  # one grant, made while the log is up
            async with audit_down(owner):
                given = await post(
                    client, person, GRANT, input={"partner": client_id, "categories": ["profile"]}
                )
                started = await post(client, partner_token, START, grant=live)
                opened = await post(client, agent, EXPORT_FOR, subject=str(subject), access=access)
            assert refused(given) and refused(started) and refused(opened), (
                given.text,
                started.text,
                opened.text,
            )
            # Nothing of the three stayed: one grant (the earlier one), no export at all.
            grants = await db.fetch("SELECT id FROM grants WHERE subject_id = $1", subject)
            assert [r["id"] for r in grants] == [UUID(live)]
            assert (
                await db.fetchval("SELECT count(*) FROM exports WHERE subject_id = $1", subject)
                == 0
            )
            # With the log back, the same requests succeed and each leaves its row.
            again = await post(client, partner_token, START, grant=live)
            assert again.json()["data"]["startTransfer"]["__typename"] == "Export", again.text
            opened = await post(client, agent, EXPORT_FOR, subject=str(subject), access=access)
            assert opened.json()["data"]["requestExportFor"]["__typename"] == "OpenedExport"
            assert (
                await db.fetchval("SELECT count(*) FROM exports WHERE subject_id = $1", subject)
                == 2
            )
            written = await db.fetch(
                "SELECT action FROM audit_log WHERE subject_id = $1 AND outcome = 'allowed' "
                "AND action NOT LIKE 'request.%' ORDER BY seq",
                subject,
            )
            assert [r["action"] for r in written] == [
                "grant.create",
                "transfer.start",
                "export.request",
            ]
            # Nor did a request (issue 17) stay without its row: one per export, both written.
            requests = "SELECT count(*) FROM requests WHERE subject_id = $1"
            assert await db.fetchval(requests, subject) == 2
    finally:
        await db.close()
