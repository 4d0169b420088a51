"""The audit log: one row per read of personal data by anyone but the subject, per export,
download, grant, revocation, transfer and denied attempt (issue 7, item 4).

Rows are appended only by the database functions `audit_append()` and `audit_append_many()`,
which chain each row to the one before (stores/migrations/service/0002_audit.sql and 0018);
`verify()` recomputes that chain here. Callers write the row *before* data leaves and return
nothing when `record()` raises `AuditUnavailable`. A row written with a change passes the
change's connection, so both commit together; a row that stands alone passes the process's
`GroupCommit` (`services.audit`), which writes it with the others waiting (group commit).
A row holds who (kind, issuer, sub or client id: never a name or an address), about whom (a
subject id), why (ticket, reason, grant or export id) and which categories by name: never a
value, a token or a secret.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, assert_never
from uuid import UUID

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from domain._auditchain import GENESIS, VerifyResult, canonical, chain_hash, verify_on
from domain._groupcommit import GroupCommit
from domain.errors import AuditUnavailable
from domain.principals import (
    Actor,
    Customer,
    Operator,
    Partner,
    Principal,
    PrivacyStaff,
    Service,
    SupportAgent,
)
from stores.scope import scoped

__all__ = [
    "GENESIS",
    "PURPOSE_KEYS",
    "AccessEntry",
    "Action",
    "AuditUnavailable",
    "Db",
    "GroupCommit",
    "Outcome",
    "VerifyResult",
    "access_log",
    "actor_of",
    "canonical",
    "chain_hash",
    "denied",
    "record",
    "verify",
]

Db = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy
Outcome = Literal["allowed", "denied", "failed"]


class Action(StrEnum):
    """Every audited action, declared once; callers pass these, never a string of their own."""

    EXPORT_REQUEST = "export.request"
    EXPORT_DOWNLOAD = "export.download"
    SUBJECT_READ = "subject.read"
    SUBJECT_FIND = "subject.find"
    FIELD_UNMASK = "field.unmask"
    GRANT_CREATE = "grant.create"
    GRANT_REVOKE = "grant.revoke"
    TRANSFER_START = "transfer.start"
    TRANSFER_DOWNLOAD = "transfer.download"
    # A download's end: how many bytes were sent, and whether that was the whole bundle.
    EXPORT_SENT = "export.sent"
    TRANSFER_SENT = "transfer.sent"
    ACCESS_DENIED = "access.denied"
    # A request's timeline (domain/requests.py): each step is one of these rows, naming it.
    REQUEST_RECEIVE = "request.receive"
    REQUEST_ACKNOWLEDGE = "request.acknowledge"
    REQUEST_VERIFY = "request.verify"
    REQUEST_EXTEND = "request.extend"
    REQUEST_HOLD = "request.hold"
    REQUEST_APPROVE = "request.approve"
    REQUEST_REFUSE = "request.refuse"
    REQUEST_COMPLETE = "request.complete"
    REQUEST_WITHDRAW = "request.withdraw"


# What a purpose may say. `reason` is the agent's own words (10 to 500 characters, checked where
# it is entered); `refusal` (why a download was refused) and `ending` (how one ended) are fixed
# words, `sent_bytes` a count; the others are identifiers.
PURPOSE_KEYS = frozenset(
    {
        *("ticket", "reason", "grant_id", "export_id", "transfer_id", "verification", "field"),
        *("refusal", "ending", "sent_bytes"),
        # `request`: the id of the request whose timeline the row is a step of; `channel`, the
        # way it came in; `basis`, the legal basis of a refusal (identifiers).
        *("request", "channel", "basis"),
    }
)
_OUTCOMES = frozenset({"allowed", "denied", "failed"})
# The same rule as the database function: a category is a name such as `profile` or
# `profile.email`, so a value cannot slip in as a "category".
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?")
_MAX_PURPOSE_VALUE = 1000
# A writer waits for the chain's lock behind the others; past this the data is refused instead.
_TIMEOUT = 10.0


def actor_of(principal: Actor | None) -> dict[str, str]:
    """Who acted, as the audit row and export requests record it."""
    match principal:
        case None:
            return {"kind": "anonymous"}
        case Partner():
            return {"kind": "partner", "iss": principal.issuer, "client_id": principal.client_id}
        case Customer() | SupportAgent() | PrivacyStaff():
            return {"kind": principal.kind, "iss": principal.issuer, "sub": principal.sub}
        case Operator():
            return {"kind": "operator", "user": principal.user}
        case Service():
            return {"kind": "service"}
        case _:
            assert_never(principal)


def _checked(
    request_id: str,
    action: Action,
    outcome: str,
    purpose: Mapping[str, str] | None,
    categories: Sequence[str],
) -> tuple[Action, dict[str, str], list[str]]:
    # Misuse is a bug in the caller, not an outage: it raises ValueError, which fails closed too.
    if not 0 < len(request_id) <= 200:
        raise ValueError("audit: request id must be 1 to 200 characters")
    if outcome not in _OUTCOMES:
        raise ValueError("audit: unknown outcome")
    purpose = dict(purpose or {})
    if not purpose.keys() <= PURPOSE_KEYS:
        raise ValueError("audit: unknown purpose key")
    if not all(isinstance(v, str) and len(v) <= _MAX_PURPOSE_VALUE for v in purpose.values()):
        raise ValueError("audit: purpose values are strings of at most 1000 characters")
    if isinstance(categories, str) or not all(_NAME.fullmatch(c) for c in categories):
        raise ValueError("audit: categories must be a sequence of category names")
    return Action(action), purpose, list(categories)


async def record(
    db: Db | GroupCommit,
    *,
    request_id: str,
    actor: Actor | None,
    subject_id: UUID | None,
    action: Action,
    outcome: Outcome,
    purpose: Mapping[str, str] | None = None,
    categories: Sequence[str] = (),
) -> int:
    """Appends one row and returns its seq; raises AuditUnavailable when it is not written.

    `db` is the connection of the transaction the row belongs to (it commits with it), or a
    `GroupCommit` for a row of its own (written and committed with the next batch), or a pool
    (a transaction of its own, one append at a time: the command line, the benchmark's baseline).
    """
    action, purpose_map, names = _checked(request_id, action, outcome, purpose, categories)
    if isinstance(db, GroupCommit):
        return await db.append(
            orjson.dumps(
                {
                    "request_id": request_id,
                    "actor": actor_of(actor),
                    # str(): asyncpg's own UUID type is not one orjson knows.
                    "subject_id": None if subject_id is None else str(subject_id),
                    "action": action.value,
                    "purpose": purpose_map,
                    "categories": names,
                    "outcome": outcome,
                }
            )
        )
    try:
        # JSON goes as text and is cast in SQL, so this works with or without a jsonb codec.
        seq = await db.fetchval(
            "SELECT audit_append($1, $2::text::jsonb, $3, $4, $5::text::jsonb, $6, $7)",
            request_id,
            orjson.dumps(actor_of(actor)).decode(),
            subject_id,
            action.value,
            orjson.dumps(purpose_map).decode(),
            names,
            outcome,
            timeout=_TIMEOUT,
        )
    except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise AuditUnavailable(type(exc).__name__) from None
    if not isinstance(seq, int):
        raise AuditUnavailable("no seq returned")
    return seq


async def denied(
    db: Db | GroupCommit,
    *,
    request_id: str,
    actor: Principal | None,
    subject_id: UUID | None,
    action: Action = Action.ACCESS_DENIED,
    purpose: Mapping[str, str] | None = None,
    categories: Sequence[str] = (),
) -> None:
    """A refused attempt, recorded when the log takes it: the refusal stands either way."""
    with contextlib.suppress(AuditUnavailable):
        await record(
            db,
            request_id=request_id,
            actor=actor,
            subject_id=subject_id,
            action=action,
            outcome="denied",
            purpose=purpose,
            categories=categories,
        )


async def verify(db: Db, *, batch: int = 1000) -> VerifyResult:
    """Recomputes every row's hash in seq order and names the first row that breaks the chain."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await verify_on(conn, batch=batch)
    return await verify_on(db, batch=batch)


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One look at a person's data by someone else, as that person may see it."""

    at: datetime
    actor_kind: str
    client_id: str | None
    ticket: str | None
    action: str
    outcome: str
    categories: tuple[str, ...]
    # Why it was refused, or how a download ended and how many bytes were sent.
    refusal: str | None = None
    ending: str | None = None
    sent_bytes: int | None = None


async def access_log(db: Db, subject_id: UUID, limit: int = 100) -> list[AccessEntry]:
    """Partner and support access to `subject_id`, newest first (at most `limit`, up to 1000).

    The subject's own actions are not listed: they know those, nor the steps of their requests
    (`me { requests { timeline } }` shows those). Only the kind of agent and the ticket are
    shown, never the agent's identity.
    """
    async with scoped(db, subject=subject_id) as conn:
        rows = await conn.fetch(
            """SELECT at, actor->>'kind' AS kind, actor->>'client_id' AS client_id,
                      purpose->>'ticket' AS ticket, action, outcome, categories,
                      purpose->>'refusal' AS refusal, purpose->>'ending' AS ending,
                      purpose->>'sent_bytes' AS sent_bytes
               FROM audit_log
               WHERE subject_id = $1 AND actor->>'kind' IN ('partner', 'support')
                 AND action NOT LIKE 'request.%'
               ORDER BY seq DESC LIMIT $2""",
            subject_id,
            max(1, min(limit, 1000)),
        )
    return [
        AccessEntry(
            at=r["at"],
            actor_kind=r["kind"],
            client_id=r["client_id"],
            ticket=r["ticket"],
            action=r["action"],
            outcome=r["outcome"],
            categories=tuple(r["categories"]),
            refusal=r["refusal"],
            ending=r["ending"],
            sent_bytes=int(r["sent_bytes"]) if r["sent_bytes"] else None,
        )
        for r in rows
    ]
