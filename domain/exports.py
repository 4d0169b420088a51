"""Export requests: one row per request, who may download it, the limits, and the running lease.

A request records who asked, for whom, why, in which format, which categories and how strongly
the person had proved who they were. The bundle itself is streamed from the stores when its
owner downloads it (`domain.downloads`): nothing of anyone's data is kept at rest here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from catalogue import Catalogue
from domain import audit, jurisdiction, requests
from domain.audit import Action, actor_of
from domain.errors import LimitReached, NotFound, Refused
from domain.leases import ORPHANED
from domain.principals import Customer, Partner, Principal, SupportAgent
from domain.requests import Channel, Degree, NewRequest, Verification
from domain.rules import Rules
from domain.stepup import require_strong_login
from exporters import EXPORTERS, PURPOSES, BundleError
from exporters.bundle import plan
from stores.registry import Stores
from stores.scope import Scope, scoped

Conn = asyncpg.Connection | PoolConnectionProxy

DAY = timedelta(days=1)

log = logging.getLogger("dsar.limits")


class InvalidExportRequest(Refused):
    """A request that cannot be met as asked."""


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
    grant_id: UUID | None
    since: datetime | None
    generated_at: datetime | None
    request_id: UUID | None
    full_sends: int
    downloads_allowed: int
    sent_bytes: int | None
    # The database's clock when the row was read (`SELECT *, now() AS checked_at`): expiry is
    # judged by it, never by this process's clock, which may be off.
    checked_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> ExportRow:
        values = {name: row[name] for name in _FIELDS}
        values["categories"] = tuple(values["categories"])
        return cls(**values)

    @property
    def expired(self) -> bool:
        return self.checked_at >= self.expires_at

    @property
    def downloadable(self) -> bool:
        """A link serves until it expires, at most `downloads_allowed` whole bundles, and again
        after any download cut short (the client may not have had it all)."""
        return (
            self.status in DOWNLOADABLE
            and self.full_sends < self.downloads_allowed
            and not self.expired
        )

    @property
    def current_status(self) -> str:
        """`expired` once the link is past its date, whatever was stored (a running stream ends)."""
        if self.status != "running" and self.expired:
            return "expired"
        return self.status


# The statuses a link may be downloaded from (with retries left and before its date).
DOWNLOADABLE = ("ready", "failed", "completed")
# Every read of an export row carries the database's clock.
ROW = "*, now() AS checked_at"


_FIELDS = tuple(f.name for f in fields(ExportRow))


def verification(principal: Customer | SupportAgent, rules: Rules) -> dict[str, Any]:
    """The strength of the login that was met (RFC 9470): recorded on every export request."""
    login = principal.authentication
    return {
        "method": "oidc_login",
        "iss": principal.issuer,
        "acr": login.acr,
        "auth_time": login.auth_time,
        "required_acr_values": list(rules.step_up_acr_values),
        "max_age": rules.step_up_max_age,
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


def check_request(
    catalogue: Catalogue, format: str, purpose: str, categories: Sequence[str] | None
) -> list[str]:
    """The category keys of a valid request, in catalogue order; raises `InvalidExportRequest`."""
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
    rules: Rules,
    principal: Principal | None,
    *,
    format: str,
    purpose: str,
    categories: Sequence[str] | None = None,
    request_id: str = "-",
    stores: Stores | None = None,
) -> ExportRow:
    """A customer's own access or portability request, committed with its audit row (with
    `stores`, the person's jurisdiction is settled first). Raises
    `StepUpRequired` (step-up), `InvalidExportRequest`, `LimitReached`,
    or `AuditUnavailable` (then nothing of the request remains)."""
    if not isinstance(principal, Customer):
        raise InvalidExportRequest("Only a person can ask for a copy of their own data.")
    require_strong_login(principal, rules.step_up_acr_values, rules.step_up_max_age)
    if principal.subject_id is None:
        raise InvalidExportRequest(
            "No personal data is linked to this login: there is nothing to export."
        )
    keys = check_request(catalogue, format, purpose, categories)
    if stores is not None:
        # Whose law sets the request's dates: what the stores say now.
        await jurisdiction.settle(stores, catalogue, principal.subject_id)
    async with scoped(db, subject=principal.subject_id) as conn:
        row = await create(
            conn,
            rules,
            limit=daily_limit(principal.subject_id, rules.exports_per_day),
            subject_id=principal.subject_id,
            requested_by=actor_of(principal),
            recipient={"kind": "subject"},
            purpose=purpose,
            format=format,
            categories=keys,
            verification=verification(principal, rules),
            request=NewRequest(
                Channel.ACCOUNT,
                principal,
                # The strong, recent login it took (`require_strong_login`) is a reasonably
                # high degree (CCPA regulations §7062): a copy may go to the person.
                Verification("oidc_login", Degree.REASONABLY_HIGH),
                request_id,
            ),
        )
        await audit.record(
            conn,
            request_id=request_id,
            actor=principal,
            subject_id=row.subject_id,
            action=Action.EXPORT_REQUEST,
            outcome="allowed",
            purpose=export_purpose(row),
            categories=row.categories,
        )
    return row


def export_purpose(row: ExportRow, **more: str) -> dict[str, str]:
    """The audit purpose of a step about an export: its id, and its request's."""
    purpose = {"export_id": str(row.id), **more}
    if row.request_id is not None:
        purpose["request"] = str(row.request_id)
    return purpose


def daily_limit(subject_id: UUID, most: int) -> Callable[[Conn], Awaitable[None]]:
    """At most `most` exports to the person a day, whoever asked for them (the person, or an
    agent for them): a `limit` for `create`."""

    async def check(conn: Conn) -> None:
        # Failed exports do not count: the person may ask again at once.
        created = await conn.fetch(
            """SELECT created_at FROM exports
               WHERE subject_id = $1 AND recipient = '{"kind": "subject"}'::jsonb
                 AND created_at > now() - interval '1 day' AND status <> 'failed'
               ORDER BY created_at""",
            subject_id,
        )
        await within_limit(conn, [r["created_at"] for r in created], most, DAY, "exports_per_day")

    return check


async def within_limit(
    conn: Conn, created: Sequence[datetime], most: int, window: timedelta, name: str
) -> None:
    """Raises `LimitReached` when `created` (oldest first, all inside `window`) already
    holds `most` entries, with the seconds until the oldest that counts leaves the window.
    The database's clock judges (`now()`), like every expiry and lease."""
    if len(created) < most:
        return
    now = await conn.fetchval("SELECT now()")
    frees_at = created[len(created) - most] + window
    # The limit's name only: who hit it is in the audit log, not here.
    log.warning("limit reached", extra={"event": name})
    raise LimitReached(max(1, int((frees_at - now).total_seconds()) + 1), name)


async def create(
    conn: Conn,
    rules: Rules,
    *,
    limit: Callable[[Conn], Awaitable[None]],
    subject_id: UUID,
    requested_by: Mapping[str, Any],
    recipient: Mapping[str, Any],
    purpose: str,
    format: str,
    categories: Sequence[str],
    verification: Mapping[str, Any],
    request: NewRequest | UUID,
    grant_id: UUID | None = None,
    since: datetime | None = None,
    held: Sequence[str] = (),
) -> ExportRow:
    """One running export per subject and recipient (a repeat gets the running one, or the
    identical one not yet downloaded); `limit` raises `LimitReached` to refuse a new one.
    Both run under a lock on the subject, so they cannot race. A new export opens its
    `request`, or answers the open request of that id (a repeat belongs to the request of the
    one it returns). Runs in the caller's
    transaction (`conn`), which commits the rows together with their audit rows.

    `held`: categories that wait for privacy staff's review (catalogue/requests.toml [review]):
    left out of this export, and the request is `in_review` until they are approved."""
    if not conn.is_in_transaction():
        raise RuntimeError("exports.create runs inside the caller's transaction")
    held = [c for c in categories if c in held]
    categories = [c for c in categories if c not in held]
    if not categories:
        raise InvalidExportRequest(
            "Every category asked for waits for a privacy review first: ask for other "
            "categories with them, or ask privacy staff."
        )
    # Serialises requests for one subject, so the limit and the repeat rule cannot race.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", str(subject_id))
    await fail_stale(conn, subject_id)
    existing = await conn.fetchrow(
        f"""SELECT {ROW} FROM exports
            WHERE subject_id = $1 AND recipient = $2
              AND (status = 'running'
                   OR (status = 'ready' AND expires_at > now() AND purpose = $3
                       AND format = $4 AND categories = $5::text[]
                       AND grant_id IS NOT DISTINCT FROM $6
                       AND since IS NOT DISTINCT FROM $7))
            ORDER BY status = 'running' DESC, created_at DESC LIMIT 1""",  # noqa: S608  # a constant, no input
        subject_id,
        recipient,
        purpose,
        format,
        list(categories),
        grant_id,
        since,
    )
    if existing is not None:
        return ExportRow.of(existing)
    await limit(conn)
    if isinstance(request, UUID):
        answers = request
    else:
        opened = await requests.open_request(
            conn, rules.requests, request, subject_id=subject_id, kind=purpose
        )
        answers = opened.id
    row = await conn.fetchrow(
        f"""INSERT INTO exports (id, subject_id, requested_by, recipient, purpose, format,
                                 categories, verification, status, expires_at,
                                 grant_id, since, downloads_allowed, request_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ready',
                    now() + make_interval(secs => $9), $10, $11, $12, $13)
            RETURNING {ROW}""",  # noqa: S608  # a constant, no input
        uuid4(),
        subject_id,
        requested_by,
        recipient,
        purpose,
        format,
        list(categories),
        verification,
        float(rules.export_link_ttl),
        grant_id,
        since,
        rules.downloads_per_link,
        answers,
    )
    assert row is not None
    if held:
        await requests.hold(conn, answers, subject_id, held)
    return ExportRow.of(row)


async def get(db: asyncpg.Pool, export_id: UUID) -> ExportRow | None:
    """Any export by its id (`Scope.BY_ID`): the caller decides whether it may have it, and
    records a refused attempt against its person."""
    async with scoped(db, scope=Scope.BY_ID) as conn:
        row = await conn.fetchrow(f"SELECT {ROW} FROM exports WHERE id = $1", export_id)  # noqa: S608  # a constant, no input
    return None if row is None else ExportRow.of(row)


async def seen_by(
    db: asyncpg.Pool,
    principal: Principal | None,
    export_id: UUID,
    request_id: str = "-",
    *,
    audit_log: audit.GroupCommit,
) -> ExportRow:
    """One export of the caller's. Raises `NotFound` for one that does not exist and for
    someone else's alike; an attempt on someone else's is recorded as denied, through the
    process's group commit (`audit_log`)."""
    row = await get(db, export_id)
    if row is None or principal is None:
        raise NotFound
    if not may_download(principal, row):
        await audit.denied(
            audit_log,
            request_id=request_id,
            actor=principal,
            subject_id=row.subject_id,
            purpose={"export_id": str(row.id)},
        )
        raise NotFound
    return row


async def mine(db: asyncpg.Pool, principal: Principal | None, limit: int = 20) -> list[ExportRow]:
    """A person's own requests (none for any other caller)."""
    if not isinstance(principal, Customer) or principal.subject_id is None:
        return []
    return await for_subject(db, principal.subject_id, limit)


async def for_subject(db: asyncpg.Pool, subject_id: UUID, limit: int = 20) -> list[ExportRow]:
    """The subject's own requests, newest first (what the account page lists), at most 100."""
    limit = max(1, min(limit, 100))
    async with scoped(db, subject=subject_id) as conn:
        rows = await conn.fetch(
            f"""SELECT {ROW} FROM exports
                WHERE subject_id = $1 AND recipient = '{{"kind": "subject"}}'::jsonb
                ORDER BY created_at DESC LIMIT $2""",  # noqa: S608  # a constant, no input
            subject_id,
            limit,
        )
    return [ExportRow.of(r) for r in rows]


ORPHAN_FAILURE = "The service stopped while the bundle was streaming."


async def fail_stale(conn: Conn, subject_id: UUID) -> None:
    """Fails the subject's running exports whose process is gone (`domain.leases`)."""
    await conn.execute(
        f"""UPDATE exports SET status = 'failed', finished_at = now(), heartbeat_at = NULL,
                               failure = $2
            WHERE subject_id = $1 AND status = 'running' AND {ORPHANED}""",  # noqa: S608  # a constant expression, no input
        subject_id,
        ORPHAN_FAILURE,
    )


async def fail_orphans(db: asyncpg.Pool) -> int:
    """At start-up: every running export whose process is gone is failed now."""
    async with scoped(db, scope=Scope.SWEEP) as conn:
        done = await conn.fetch(
            f"""UPDATE exports SET status = 'failed', finished_at = now(), heartbeat_at = NULL,
                                   failure = $1
                WHERE status = 'running' AND {ORPHANED} RETURNING id""",  # noqa: S608  # a constant expression, no input
            ORPHAN_FAILURE,
        )
    return len(done)
