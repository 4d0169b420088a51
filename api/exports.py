"""Export requests: one row per request, who may download it, the limits, and the running lease.

A request records who asked, for whom, why, in which format, which categories and how strongly
the person had proved who they were. The bundle itself is streamed from the stores when its
owner downloads it (`api.downloads`): nothing of anyone's data is kept at rest here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from api.authn import require_strong_login
from api.principals import Customer, Partner, Principal, SupportAgent
from api.settings import Settings
from catalogue import Catalogue
from exporters import EXPORTERS, PURPOSES, BundleError
from exporters.bundle import plan

# A running export whose heartbeat is older than this belongs to a process that died.
STALE_AFTER = timedelta(seconds=60)
DAY = timedelta(days=1)


class InvalidExportRequest(Exception):
    """A request that cannot be met as asked; the message is fixed text, safe to show."""


class ExportLimitReached(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class ExportBusy(Exception):
    """Another export of the same subject is streaming right now."""


@dataclass(frozen=True, slots=True)
class ExportRow:
    id: UUID
    subject_id: UUID
    requested_by: Mapping[str, Any]
    recipient: Mapping[str, Any]
    purpose: str
    format: str
    categories: tuple[str, ...]
    verification: Mapping[str, Any]
    status: str
    failure: str | None
    records: int | None
    bytes: int | None
    sha256: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime
    downloads: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> ExportRow:
        values = {name: row[name] for name in _FIELDS}
        values["categories"] = tuple(values["categories"])
        return cls(**values)

    def status_at(self, now: datetime) -> str:
        """`expired` once the link is past its date, whatever was stored (a running stream ends)."""
        if self.status != "running" and now >= self.expires_at:
            return "expired"
        return self.status


_FIELDS = tuple(f.name for f in fields(ExportRow))


def actor(principal: Principal) -> dict[str, str]:
    """Who asked, by identity only (`iss`, `sub` or client id), never by name or address."""
    if isinstance(principal, Partner):
        return {"kind": principal.kind, "iss": principal.issuer, "client_id": principal.client_id}
    return {"kind": principal.kind, "iss": principal.issuer, "sub": principal.sub}


def verification(principal: Customer | SupportAgent, settings: Settings) -> dict[str, Any]:
    """The strength of the login that was met (RFC 9470): recorded on every export request."""
    login = principal.authentication
    return {
        "method": "oidc_login",
        "iss": principal.issuer,
        "acr": login.acr,
        "auth_time": login.auth_time,
        "required_acr_values": list(settings.step_up_acr_values),
        "max_age": settings.step_up_max_age,
    }


def may_download(principal: Principal, row: ExportRow) -> bool:
    recipient = row.recipient
    if isinstance(principal, Customer):
        return recipient.get("kind") == "subject" and principal.subject_id == row.subject_id
    if isinstance(principal, Partner):
        return recipient == {
            "kind": "partner",
            "iss": principal.issuer,
            "client_id": principal.client_id,
        }
    return False


def _check(
    catalogue: Catalogue, format: str, purpose: str, categories: Sequence[str] | None
) -> list[str]:
    if format not in EXPORTERS:
        raise InvalidExportRequest("Unknown format.")
    if purpose not in PURPOSES:
        raise InvalidExportRequest("Unknown purpose.")
    if categories is not None and not categories:
        raise InvalidExportRequest("Name at least one category, or leave the list out for all.")
    try:
        included, _ = plan(catalogue, purpose, categories)
    except BundleError:
        raise InvalidExportRequest("Unknown category.") from None
    if not included:
        raise InvalidExportRequest("None of these categories can be exported for this purpose.")
    return [c.key for c in catalogue if categories is None or c.key in categories]


async def request_for_self(
    db: asyncpg.Pool,
    catalogue: Catalogue,
    settings: Settings,
    principal: Customer,
    *,
    format: str,
    purpose: str,
    categories: Sequence[str] | None = None,
) -> ExportRow:
    """A customer's own access or portability request. Raises `InsufficientUserAuthentication`
    (step-up), `InvalidExportRequest` or `ExportLimitReached`."""
    require_strong_login(principal, settings.step_up_acr_values, settings.step_up_max_age)
    if principal.subject_id is None:
        raise InvalidExportRequest(
            "No personal data is linked to this login: there is nothing to export."
        )
    keys = _check(catalogue, format, purpose, categories)
    return await create(
        db,
        settings,
        subject_id=principal.subject_id,
        requested_by=actor(principal),
        recipient={"kind": "subject"},
        purpose=purpose,
        format=format,
        categories=keys,
        verification=verification(principal, settings),
    )


async def create(
    db: asyncpg.Pool,
    settings: Settings,
    *,
    subject_id: UUID,
    requested_by: Mapping[str, Any],
    recipient: Mapping[str, Any],
    purpose: str,
    format: str,
    categories: Sequence[str],
    verification: Mapping[str, Any],
) -> ExportRow:
    """One running export per subject (a repeat gets the running one, or the identical one not
    yet downloaded), and at most `exports_per_day` new ones in any 24 hours."""
    async with db.acquire() as conn, conn.transaction():
        # Serialises requests for one subject, so the limit and the repeat rule cannot race.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", str(subject_id))
        await _fail_stale(conn, subject_id)
        existing = await conn.fetchrow(
            """SELECT * FROM exports
                WHERE subject_id = $1 AND recipient = $2
                  AND (status = 'running'
                       OR (status = 'ready' AND expires_at > now() AND purpose = $3
                           AND format = $4 AND categories = $5::text[]))
                ORDER BY status = 'running' DESC, created_at DESC LIMIT 1""",
            subject_id,
            recipient,
            purpose,
            format,
            list(categories),
        )
        if existing is not None:
            return ExportRow.of(existing)
        # Failed exports do not count: the person may ask again at once.
        oldest = await conn.fetch(
            """SELECT created_at FROM exports
               WHERE subject_id = $1 AND created_at > now() - interval '1 day'
                 AND status <> 'failed'
               ORDER BY created_at""",
            subject_id,
        )
        if len(oldest) >= settings.exports_per_day:
            now = await conn.fetchval("SELECT now()")
            frees_at = oldest[len(oldest) - settings.exports_per_day]["created_at"] + DAY
            raise ExportLimitReached(max(1, int((frees_at - now).total_seconds()) + 1))
        row = await conn.fetchrow(
            """INSERT INTO exports (id, subject_id, requested_by, recipient, purpose, format,
                                     categories, verification, status, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ready',
                        now() + make_interval(secs => $9))
                RETURNING *""",
            uuid4(),
            subject_id,
            requested_by,
            recipient,
            purpose,
            format,
            list(categories),
            verification,
            float(settings.export_link_ttl),
        )
    assert row is not None
    return ExportRow.of(row)


async def get(db: asyncpg.Pool, export_id: UUID) -> ExportRow | None:
    row = await db.fetchrow("SELECT * FROM exports WHERE id = $1", export_id)
    return None if row is None else ExportRow.of(row)


async def for_subject(db: asyncpg.Pool, subject_id: UUID, limit: int = 20) -> list[ExportRow]:
    """The subject's own requests, newest first (what the account page lists)."""
    rows = await db.fetch(
        """SELECT * FROM exports
            WHERE subject_id = $1 AND recipient = '{"kind": "subject"}'::jsonb
            ORDER BY created_at DESC LIMIT $2""",
        subject_id,
        limit,
    )
    return [ExportRow.of(r) for r in rows]


async def claim(db: asyncpg.Pool, row: ExportRow) -> ExportRow:
    """Takes the running lease for one download. Raises `ExportBusy` when another stream of the
    same subject runs: the unique index allows one running export per subject."""
    async with db.acquire() as conn, conn.transaction():
        await _fail_stale(conn, row.subject_id)
        try:
            claimed = await conn.fetchrow(
                """UPDATE exports
                    SET status = 'running', started_at = now(), heartbeat_at = now(),
                        failure = NULL, downloads = downloads + 1
                    WHERE id = $1 AND status IN ('ready', 'completed', 'failed')
                      AND expires_at > now()
                    RETURNING *""",
                row.id,
            )
        except asyncpg.UniqueViolationError:
            raise ExportBusy from None
    if claimed is None:
        raise ExportBusy
    return ExportRow.of(claimed)


async def heartbeat(db: asyncpg.Pool, export_id: UUID) -> None:
    await db.execute("UPDATE exports SET heartbeat_at = now() WHERE id = $1", export_id)


async def complete(
    db: asyncpg.Pool, export_id: UUID, *, records: int, size: int, sha256: str
) -> None:
    await db.execute(
        """UPDATE exports SET status = 'completed', records = $2, bytes = $3, sha256 = $4,
                              finished_at = now(), heartbeat_at = NULL
           WHERE id = $1""",
        export_id,
        records,
        size,
        sha256,
    )


async def fail(db: asyncpg.Pool, export_id: UUID, reason: str) -> None:
    """`reason` is fixed text chosen by the caller: never an exception message."""
    await db.execute(
        """UPDATE exports SET status = 'failed', failure = $2, finished_at = now(),
                              heartbeat_at = NULL
           WHERE id = $1""",
        export_id,
        reason,
    )


async def _fail_stale(conn: asyncpg.Connection | PoolConnectionProxy, subject_id: UUID) -> None:
    await conn.execute(
        """UPDATE exports SET status = 'failed', finished_at = now(), heartbeat_at = NULL,
                              failure = 'The service stopped while the bundle was streaming.'
           WHERE subject_id = $1 AND status = 'running'
             AND heartbeat_at < now() - make_interval(secs => $2)""",
        subject_id,
        STALE_AFTER.total_seconds(),
    )
