"""Every audited write commits with its audit row, or not at all; one ticket binds one person."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from api.devissuer import DevIssuer
from catalogue import Catalogue
from domain.partners import add_partner
from stores.registry import Stores
from stores.seed import subject_id
from tests._factories import insert_marked
from tests._tokens import TEST_ISSUER

GRANT = """mutation($input: GrantInput!) { grantPortability(input: $input) {
  __typename ... on PortabilityGrant { id } } }"""
REVOKE = "mutation($id: ID!) { revokePortability(id: $id) { __typename } }"
TRANSFERS = "{ portabilityTransfers { grant } }"
START = "mutation($grant: ID!) { startTransfer(grant: $grant) { __typename ... on Export { id } } }"
EXPORT_FOR = """
mutation($subject: ID!, $access: SupportAccess!) {
  requestExportFor(subject: $subject, access: $access, input: {format: JSON},
                   verification: {method: EMAIL_CONFIRMED}) {
    __typename ... on OpenedExport { id status } ... on InvalidSupportAccess { message }
  }
}
"""
_APPEND = "audit_append(text, jsonb, uuid, text, jsonb, text[], text)"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def gql(
    client: httpx.AsyncClient, token: str, query: str, **variables: Any
) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=_auth(token)
    )


@asynccontextmanager
async def audit_down(db: asyncpg.Connection) -> AsyncIterator[None]:
    """The audit log takes no rows: its only writer is gone for a moment."""
    await db.execute(f"ALTER FUNCTION {_APPEND} RENAME TO audit_append_down")
    try:
        yield
    finally:
        await db.execute(
            f"ALTER FUNCTION {_APPEND.replace('audit_append', 'audit_append_down')} "
            "RENAME TO audit_append"
        )


@pytest.fixture
async def partner(db: asyncpg.Connection, catalogue: Catalogue) -> str:
    name = f"partner-{uuid4().hex[:8]}"
    await add_partner(
        db, catalogue, client_id=name, issuer=TEST_ISSUER, name=name, categories=["profile"]
    )
    return name


async def person(stores: Stores, catalogue: Catalogue) -> str:
    handle = f"atomic-{uuid4().hex[:10]}"
    await insert_marked(stores, catalogue, handle, f"A{uuid4().hex[:8]}", 79)
    return handle


def unavailable(r: httpx.Response) -> bool:
    # Every 503 reads alike, whichever layer answered: the edge's word, the request id, codes.
    body = r.json()
    return (
        r.status_code == 503
        and r.headers["retry-after"].isdigit()
        and body.get("error") == "unavailable"
        and body.get("request_id") == r.headers["x-request-id"]
        and {e["extensions"]["code"] for e in body["errors"]}
        <= {"UNAVAILABLE", "AUDIT_UNAVAILABLE"}
    )


async def test_a_grant_does_not_stand_without_its_audit_row(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
    db: asyncpg.Connection,
    partner: str,
) -> None:
    handle = await person(stores, catalogue)
    grant = {"partner": partner, "categories": ["profile"]}
    async with audit_down(db):
        r = await gql(client, issuer.mint("customer", handle), GRANT, input=grant)
    assert unavailable(r), r.text
    assert await db.fetchval("SELECT count(*) FROM grants WHERE partner = $1", partner) == 0
    seen = await gql(client, issuer.mint("partner", partner), TRANSFERS)
    assert seen.json()["data"]["portabilityTransfers"] == []


async def test_a_revocation_and_a_transfer_do_not_stand_without_their_audit_rows(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
    db: asyncpg.Connection,
    partner: str,
) -> None:
    handle = await person(stores, catalogue)
    customer = issuer.mint("customer", handle)
    given = await gql(
        client, customer, GRANT, input={"partner": partner, "categories": ["profile"]}
    )
    grant_id = given.json()["data"]["grantPortability"]["id"]
    async with audit_down(db):
        started = await gql(client, issuer.mint("partner", partner), START, grant=grant_id)
        revoked = await gql(client, customer, REVOKE, id=grant_id)
    assert unavailable(started) and unavailable(revoked), (started.text, revoked.text)
    exports = await db.fetchval("SELECT count(*) FROM exports WHERE grant_id = $1", UUID(grant_id))
    assert exports == 0
    live = await db.fetchval("SELECT revoked_at IS NULL FROM grants WHERE id = $1", UUID(grant_id))
    assert live is True


async def test_an_agents_export_does_not_stand_without_its_audit_row(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
    db: asyncpg.Connection,
) -> None:
    handle = await person(stores, catalogue)
    agent = issuer.mint("support", f"agent-{uuid4().hex[:8]}")
    access = {"ticket": f"ATM-{uuid4().int % 10**9}", "reason": "Customer asked for a copy"}
    async with audit_down(db):
        r = await gql(client, agent, EXPORT_FOR, subject=str(subject_id(handle)), access=access)
    assert unavailable(r), r.text
    ready = await db.fetchval(
        "SELECT count(*) FROM exports WHERE subject_id = $1 AND status = 'ready'",
        subject_id(handle),
    )
    assert ready == 0
    # Nothing bound the ticket either: it may still be used for this person.
    again = await gql(client, agent, EXPORT_FOR, subject=str(subject_id(handle)), access=access)
    assert again.json()["data"]["requestExportFor"]["__typename"] == "OpenedExport", again.text


async def test_one_ticket_opens_exports_for_one_of_two_people_at_once(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
    db: asyncpg.Connection,
) -> None:
    for _ in range(5):
        a, b = [await person(stores, catalogue) for _ in range(2)]
        agent = issuer.mint("support", f"agent-{uuid4().hex[:8]}")
        access = {"ticket": f"ATM-{uuid4().int % 10**9}", "reason": "Customer asked for a copy"}
        answers = await asyncio.gather(
            *(
                gql(client, agent, EXPORT_FOR, subject=str(subject_id(h)), access=access)
                for h in (a, b)
            )
        )
        kinds = sorted(r.json()["data"]["requestExportFor"]["__typename"] for r in answers)
        assert kinds == ["InvalidSupportAccess", "OpenedExport"], [r.text for r in answers]
        opened = await db.fetchval(
            "SELECT count(DISTINCT subject_id) FROM exports WHERE subject_id = any($1::uuid[])",
            [subject_id(a), subject_id(b)],
        )
        assert opened == 1
