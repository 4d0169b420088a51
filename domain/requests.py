"""Requests as cases: every access or portability request, whatever way it came in, from
receipt to its end (issue 17).

A request is received, acknowledged, verified, answered (its exports), extended or refused,
and closed; each of those steps changes its row and writes its audit row in one transaction,
and the rows that name the request (`purpose.request`) are its timeline. The dates come from
the catalogue's deadlines for the person's jurisdiction (`domain.deadlines`); a person whose
jurisdiction is not known gets the stricter dates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from catalogue import UNKNOWN, RequestRules
from domain import audit, deadlines
from domain.audit import Action, actor_of
from domain.principals import Actor, Operator, Service
from stores.scope import Scope, bind, scoped

Conn = asyncpg.Connection | PoolConnectionProxy


class Channel(StrEnum):
    """How a request came in."""

    ACCOUNT = "account"  # the person's own account page or the API with their login
    SUPPORT = "support"  # a support agent opened it for the person
    PUBLIC_FORM = "public_form"  # /requests/new, without an account
    AGENT = "agent"  # an authorized agent, for the person (CCPA regulations §7063)
    CLI = "cli"  # an operator ran `dsar export`
    PARTNER = "partner"  # a transfer to a partner the person authorised (GDPR Art. 20(2))


class Status(StrEnum):
    RECEIVED = "received"
    VERIFYING = "verifying"
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    COMPLETED = "completed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


CLOSED = frozenset({Status.COMPLETED, Status.REFUSED, Status.WITHDRAWN})


class Degree(StrEnum):
    """How sure the company is of who asked (CCPA regulations §§7060-7062)."""

    REASONABLE = "reasonable"  # enough for the categories-level statement
    REASONABLY_HIGH = "reasonably_high"  # enough for a copy of the data itself


@dataclass(frozen=True, slots=True)
class Verification:
    """How the person was verified: a method (`oidc_login`, `support_agent`, …) and its degree;
    never a document number."""

    method: str
    degree: Degree | None


@dataclass(frozen=True, slots=True)
class RequestRow:
    id: UUID
    subject_id: UUID | None
    kind: str
    channel: str
    jurisdiction: str
    time_zone: str
    requested_by: Mapping[str, Any]
    status: str
    received_at: datetime
    acknowledge_by: datetime
    acknowledged_at: datetime | None
    due_at: datetime
    extended_to: datetime | None
    extension_reason: str | None
    verification_method: str | None
    verification_degree: str | None
    verified_at: datetime | None
    closed_at: datetime | None
    refusal_basis: str | None
    refusal_reason: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> RequestRow:
        return cls(**{name: row[name] for name in _FIELDS})

    @property
    def deadline(self) -> datetime:
        """When the answer is due: the extended date once there is one."""
        return self.extended_to or self.due_at

    def overdue_at(self, now: datetime) -> bool:
        return self.closed_at is None and now > self.deadline


_FIELDS = tuple(f.name for f in fields(RequestRow))


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a request's timeline: one audit row that names the request."""

    at: datetime
    action: str
    actor_kind: str
    outcome: str
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Case:
    """A request with its timeline and the ids of its exports, as the person sees it."""

    row: RequestRow
    timeline: tuple[Step, ...]
    exports: tuple[UUID, ...]
    # After an act that e-mails the person: whether the message went (None: no message).
    told: bool | None = None

    @property
    def held(self) -> tuple[str, ...]:
        """The categories waiting for review, while the request is in review."""
        if self.row.status != Status.IN_REVIEW:
            return ()
        holds = [s for s in self.timeline if s.action == Action.REQUEST_HOLD]
        return holds[-1].categories if holds else ()


@dataclass(frozen=True, slots=True)
class NewRequest:
    """What a path that opens an export knows of the request behind it."""

    channel: Channel
    actor: Actor | None
    verification: Verification | None
    request_id: str = "-"
    time_zone: str = deadlines.UTC_ZONE
    jurisdiction: str | None = None  # as declared; else the subject's; else UNKNOWN


async def jurisdiction_of(conn: Conn, subject_id: UUID | None) -> str:
    """The subject's recorded jurisdiction (`domain.jurisdiction.settle`), UNKNOWN when none."""
    if subject_id is None:
        return UNKNOWN
    value = await conn.fetchval("SELECT jurisdiction FROM subjects WHERE id = $1", subject_id)
    return value if isinstance(value, str) and value else UNKNOWN


async def open_request(
    conn: Conn,
    rules: RequestRules,
    new: NewRequest,
    *,
    subject_id: UUID | None,
    kind: str,
    status: Status = Status.IN_PROGRESS,
    acknowledged: bool = True,
) -> RequestRow:
    """A new request and its `request.receive` audit row, in the caller's transaction.

    `acknowledged`: the channel answers at once (a page or an API response confirms receipt).
    A request that already carries a verification of a reasonably high degree starts
    `in_progress`."""
    if not conn.is_in_transaction():
        raise RuntimeError("requests.open_request runs inside the caller's transaction")
    jurisdiction = new.jurisdiction or await jurisdiction_of(conn, subject_id)
    if jurisdiction not in rules.deadlines:
        jurisdiction = UNKNOWN
    received_at = await conn.fetchval("SELECT now()")
    when = deadlines.dates(rules, jurisdiction, received_at, new.time_zone)
    verification = new.verification
    degree = verification.degree if verification else None
    row = await conn.fetchrow(
        """INSERT INTO requests (id, subject_id, kind, channel, jurisdiction, time_zone,
                                 requested_by, status, received_at, acknowledge_by,
                                 acknowledged_at, due_at, verification_method,
                                 verification_degree, verified_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10,
                   CASE WHEN $11 THEN $9::timestamptz END, $12, $13, $14,
                   CASE WHEN $14::text IS NOT NULL THEN $9::timestamptz END)
           RETURNING *""",
        uuid4(),
        subject_id,
        kind,
        new.channel.value,
        jurisdiction,
        str(deadlines.zone(new.time_zone)),
        dumps(actor_of(new.actor)),
        status.value,
        received_at,
        when.acknowledge_by,
        acknowledged,
        when.due_at,
        verification.method if verification else None,
        degree.value if degree else None,
    )
    assert row is not None
    opened = RequestRow.of(row)
    await audit.record(
        conn,
        request_id=new.request_id,
        actor=new.actor,
        subject_id=subject_id,
        action=Action.REQUEST_RECEIVE,
        outcome="allowed",
        purpose={"request": str(opened.id), "channel": new.channel.value},
    )
    return opened


async def hold(conn: Conn, req_id: UUID, subject_id: UUID | None, held: Sequence[str]) -> None:
    """Categories of the request wait for privacy staff's review (GDPR Art. 15(4)): the request
    is `in_review`, and the audit row names them (dsar itself applies the catalogue's rule)."""
    await conn.execute("UPDATE requests SET status = 'in_review' WHERE id = $1", req_id)
    await audit.record(
        conn,
        request_id="-",
        actor=Service(),
        subject_id=subject_id,
        action=Action.REQUEST_HOLD,
        outcome="allowed",
        purpose={"request": str(req_id)},
        categories=list(held),
    )


async def complete_export(conn: Conn, export_id: UUID, request_id: str = "-") -> bool:
    """The request of a fully sent export is answered: `completed`, with its audit row (dsar
    itself acts), in the caller's transaction. False when there was nothing to close."""
    row = await conn.fetchrow(
        """UPDATE requests r SET status = 'completed', closed_at = now()
           FROM exports e
           WHERE e.id = $1 AND r.id = e.request_id AND r.status = 'in_progress'
           RETURNING r.id, r.subject_id""",
        export_id,
    )
    if row is None:
        return False
    await audit.record(
        conn,
        request_id=request_id,
        actor=Service(),
        subject_id=row["subject_id"],
        action=Action.REQUEST_COMPLETE,
        outcome="allowed",
        purpose={"request": str(row["id"]), "export_id": str(export_id)},
    )
    return True


async def complete(
    conn: Conn, req: RequestRow, actor: Actor, *, export_id: UUID | None, request_id: str = "-"
) -> None:
    """Closes `req` as answered, with its audit row, in the caller's transaction."""
    await conn.execute(
        "UPDATE requests SET status = 'completed', closed_at = now() WHERE id = $1", req.id
    )
    purpose = {"request": str(req.id)}
    if export_id is not None:
        purpose["export_id"] = str(export_id)
    await audit.record(
        conn,
        request_id=request_id,
        actor=actor,
        subject_id=req.subject_id,
        action=Action.REQUEST_COMPLETE,
        outcome="allowed",
        purpose=purpose,
    )


async def open_by_operator(
    conn: Conn,
    rules: RequestRules,
    operator: Operator,
    subject_id: UUID,
    *,
    kind: str,
    request_id: str = "-",
) -> RequestRow:
    """`dsar export` on the command line: a request of channel `cli` naming the operator,
    committed with its audit row before any data is read. The operator answers for having
    checked who asked: no degree is recorded for them."""
    async with conn.transaction():
        await bind(conn, subject=subject_id)
        return await open_request(
            conn,
            rules,
            NewRequest(Channel.CLI, operator, Verification("operator", None), request_id),
            subject_id=subject_id,
            kind=kind,
        )


async def close_by_operator(
    conn: Conn, req: RequestRow, operator: Operator, export_id: UUID, request_id: str = "-"
) -> None:
    """The operator's bundle was written whole: the request is answered."""
    async with conn.transaction():
        await bind(conn, subject=req.subject_id)
        await complete(conn, req, operator, export_id=export_id, request_id=request_id)


async def overdue_count(db: asyncpg.Pool | Conn) -> int:
    """Open requests past their date (the extended one, once extended)."""
    async with scoped(db, scope=Scope.SWEEP) as conn:
        count = await conn.fetchval(
            """SELECT count(*) FROM requests
               WHERE closed_at IS NULL AND coalesce(extended_to, due_at) < now()"""
        )
    return int(count or 0)


async def listed(
    db: asyncpg.Pool | Conn, *, only_overdue: bool, limit: int = 1000
) -> list[RequestRow]:
    """Requests by their date, earliest first (open ones past their date only, when asked)."""
    async with scoped(db, scope=Scope.SWEEP) as conn:
        rows = await conn.fetch(
            """SELECT * FROM requests
               WHERE NOT $1 OR (closed_at IS NULL AND coalesce(extended_to, due_at) < now())
               ORDER BY coalesce(extended_to, due_at), id LIMIT $2""",
            only_overdue,
            limit,
        )
    return [RequestRow.of(r) for r in rows]


async def for_subject(db: asyncpg.Pool, subject_id: UUID, limit: int = 20) -> list[Case]:
    """The person's requests, newest first (at most 100), with timelines and exports."""
    async with scoped(db, subject=subject_id) as conn:
        rows = await conn.fetch(
            "SELECT * FROM requests WHERE subject_id = $1 ORDER BY received_at DESC, id LIMIT $2",
            subject_id,
            max(1, min(limit, 100)),
        )
    return await cases(db, [RequestRow.of(r) for r in rows], subject=subject_id)


async def get(db: asyncpg.Pool | Conn, req_id: UUID) -> RequestRow | None:
    row = await db.fetchrow("SELECT * FROM requests WHERE id = $1", req_id)
    return None if row is None else RequestRow.of(row)


async def cases(
    db: asyncpg.Pool | Conn, rows: Sequence[RequestRow], *, subject: UUID | None = None
) -> list[Case]:
    """`rows` with their timelines and exports: two statements whatever their number. The
    person's own (`subject`), or privacy staff's queue (`Scope.STAFF`)."""
    ids = [r.id for r in rows]
    if not ids:
        return []
    steps: dict[UUID, list[Step]] = {i: [] for i in ids}
    made: dict[UUID, list[UUID]] = {i: [] for i in ids}
    async with scoped(db, subject=subject, scope=None if subject else Scope.STAFF) as conn:
        for s in await conn.fetch(
            """SELECT (purpose->>'request')::uuid AS req, at, action, actor->>'kind' AS kind,
                      outcome, categories
               FROM audit_log
               WHERE purpose ? 'request' AND purpose->>'request' = ANY($1::text[])
               ORDER BY seq""",
            [str(i) for i in ids],
        ):
            steps[s["req"]].append(
                Step(s["at"], s["action"], s["kind"], s["outcome"], tuple(s["categories"]))
            )
        for e in await conn.fetch(
            "SELECT request_id, id FROM exports WHERE request_id = ANY($1::uuid[]) "
            "ORDER BY created_at",
            ids,
        ):
            made[e["request_id"]].append(e["id"])
    return [Case(r, tuple(steps[r.id]), tuple(made[r.id])) for r in rows]


def dumps(value: Mapping[str, Any]) -> str:
    return orjson.dumps(value).decode()
