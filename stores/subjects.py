"""Subjects: dsar's own id for each person, one per anchor value, and the logins linked to it.

These live in the service database (dsar's own), never in a company's store: the company's
systems are read, never written. A subject row is made the first time a person is named by
their anchor value (a support look-up, a link, an export on the command line).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from stores.scope import Scope, scoped


@dataclass(frozen=True, slots=True)
class RecordedJurisdiction:
    """A subject's jurisdiction as recorded (catalogue [jurisdictions] keys)."""

    key: str
    source: str  # unknown, stores, declared or conflict
    declared: str | None  # what the person declared, if they ever did
    at: datetime | None  # when it was last settled


class Subjects:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def for_login(self, issuer: str, sub: str) -> UUID | None:
        # Scope `login` set and put back inside the one statement (0020_bound_lookups.sql): a
        # round trip instead of a bound transaction's four, on every request with a token.
        row = await self.pool.fetchval("SELECT dsar_subject_for_login($1, $2)", issuer, sub)
        return row if isinstance(row, UUID) else None

    async def login(self, issuer: str, sub: str) -> tuple[UUID | None, str | None]:
        """The login's subject and its anchor value, in one round trip (both functions bind
        their own scope inside the statement, as `for_login` does)."""
        row = await self.pool.fetchrow(
            "SELECT s, CASE WHEN s IS NOT NULL THEN dsar_anchor_of(s) END "
            "FROM dsar_subject_for_login($1, $2) AS s",
            issuer,
            sub,
        )
        if row is None or not isinstance(row[0], UUID):
            return None, None
        return row[0], row[1] if isinstance(row[1], str) else None

    async def anchor_of(self, subject_id: UUID) -> str | None:
        # Bound to the subject inside the one statement, as for_login (0020_bound_lookups.sql).
        row = await self.pool.fetchval("SELECT dsar_anchor_of($1)", subject_id)
        return row if isinstance(row, str) else None

    async def by_handle(self, handle: str) -> UUID | None:
        async with scoped(self.pool, scope=Scope.SUBJECTS) as conn:
            row = await conn.fetchval("SELECT id FROM subjects WHERE handle = $1", handle)
        return row if isinstance(row, UUID) else None

    async def ids_for(self, anchors: list[str]) -> list[UUID]:
        """The subject of each anchor value, in order, made where there is none yet."""
        if not anchors:
            return []
        async with scoped(self.pool, scope=Scope.SUBJECTS) as conn:
            await conn.execute(
                "INSERT INTO subjects (id, anchor) SELECT * FROM unnest($1::uuid[], $2::text[]) "
                "ON CONFLICT (anchor) DO NOTHING",
                [uuid.uuid4() for _ in anchors],
                anchors,
            )
            rows = await conn.fetch(
                "SELECT anchor, id FROM subjects WHERE anchor = any($1::text[])", anchors
            )
        found = {r["anchor"]: r["id"] for r in rows}
        return [found[a] for a in anchors]

    async def link(self, subject_id: UUID, issuer: str, sub: str) -> None:
        # A login may move to another subject: the row it leaves is found by the login.
        async with scoped(self.pool, subject=subject_id, scope=Scope.LOGIN) as conn:
            await conn.execute(
                "INSERT INTO identity_links (issuer, sub, subject_id) VALUES ($1, $2, $3) "
                "ON CONFLICT (issuer, sub) DO UPDATE SET subject_id = excluded.subject_id",
                issuer,
                sub,
                subject_id,
            )

    async def jurisdiction(self, subject_id: UUID) -> RecordedJurisdiction | None:
        """The recorded jurisdiction (None for no such subject); UNKNOWN until settled."""
        async with scoped(self.pool, subject=subject_id) as conn:
            row = await conn.fetchrow(
                "SELECT jurisdiction, jurisdiction_source, declared_jurisdiction, jurisdiction_at "
                "FROM subjects WHERE id = $1",
                subject_id,
            )
        if row is None:
            return None
        return RecordedJurisdiction(*row.values())

    async def record_jurisdiction(
        self, subject_id: UUID, key: str, source: str, declared: str | None
    ) -> None:
        async with scoped(self.pool, subject=subject_id) as conn:
            await conn.execute(
                "UPDATE subjects SET jurisdiction = $2, jurisdiction_source = $3, "
                "declared_jurisdiction = $4, jurisdiction_at = now() WHERE id = $1",
                subject_id,
                key,
                source,
                declared,
            )
