"""Support agents: the stated purpose of a look, the hourly limit, and the audit row first.

An agent looks at a person only for a ticket and a reason (`Access`), at most
`DSAR_SUPPORT_SUBJECTS_PER_HOUR` different people an hour (a look that finds no one counts as
one too), and every look is written to the audit log before anything of the person is returned
(`admit`). The limit is counted from the
audit log itself, under a lock per agent, so two requests at once cannot both take the last slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from catalogue import Catalogue, Category, Field
from domain import audit, exports
from domain.audit import Action, AuditUnavailable, actor_of
from domain.errors import LimitReached, Refused
from domain.exports import ExportRow
from domain.freetext import identifying
from domain.principals import SupportAgent
from domain.requests import Channel, Degree, NewRequest, Verification
from domain.rules import Rules
from stores.registry import Stores
from stores.scope import Scope, scoped

log = logging.getLogger("dsar.limits")

# A ticket id of the help desk: a project key of 2 to 10 capital letters, a dash and a number,
# e.g. `SUP-1234` (ASCII only: `\d` would take any script's digits).
TICKET = re.compile(r"[A-Z]{2,10}-[0-9]{1,10}")
TICKET_FORMAT = "2 to 10 capital letters, a dash and 1 to 10 digits, e.g. SUP-1234"
REASON_MIN, REASON_MAX = 10, 500
NOTE_MAX = 500
EMAIL_MAX = 320
MAX_MATCHES = 5
HOUR = timedelta(hours=1)
# The looks that count against the hourly limit: each shows something of a person.
LOOKS = (Action.SUBJECT_FIND, Action.SUBJECT_READ, Action.FIELD_UNMASK)
# A number a person could be identified by (document, card, account): 4 digits or more, with
# spaces or dashes between them or not. A verification note records how, never the number.
_DOCUMENT_NUMBER = re.compile(r"[0-9](?:[ \-./]?[0-9]){3,}")
_ACQUIRE_TIMEOUT = 10.0


class InvalidAccess(Refused):
    """The ticket or reason is missing or malformed, or the ticket is about someone else."""


class InvalidInput(Refused):
    """An argument that cannot be used as given; the message never holds the value."""


@dataclass(frozen=True, slots=True)
class Access:
    """Why an agent looks: a ticket id and the agent's own words, both checked."""

    ticket: str
    reason: str

    @classmethod
    def of(cls, ticket: str, reason: str) -> Access:
        ticket, reason = ticket.strip(), reason.strip()
        if not TICKET.fullmatch(ticket):
            raise InvalidAccess(f"The ticket must be {TICKET_FORMAT}.")
        if not REASON_MIN <= len(reason) <= REASON_MAX:
            raise InvalidAccess(
                f"The reason must be {REASON_MIN} to {REASON_MAX} characters, spaces trimmed."
            )
        if not _plain(reason):
            raise InvalidAccess("The reason must be plain text, without control characters.")
        found = identifying(reason)
        if found is not None:
            # The reason is kept forever in the audit log: it says why, never who.
            raise InvalidAccess(
                f"The reason holds what looks like {found}; it is kept forever in the audit "
                "log, so describe the request without it (the ticket holds the details)."
            )
        return cls(ticket, reason)

    def purpose(self) -> dict[str, str]:
        return {"ticket": self.ticket, "reason": self.reason}


def _plain(text: str) -> bool:
    # Control and format characters (NUL, CR/LF, ANSI escapes, bidi overrides) have no place in
    # a one-line reason, and PostgreSQL's jsonb refuses NUL outright.
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in text)


def normalise_email(email: str) -> str:
    """Trimmed and lower-cased; the look-up is exact (`=`), so `%` and `_` are only letters."""
    email = email.strip().lower()
    if not 3 <= len(email) <= EMAIL_MAX or "@" not in email or not _plain(email):
        raise InvalidInput("`email` is not an e-mail address.")
    if any(c.isspace() for c in email):
        raise InvalidInput("`email` is not an e-mail address.")
    return email


def verification_note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > NOTE_MAX or not _plain(note):
        raise InvalidInput(f"The note must be plain text of at most {NOTE_MAX} characters.")
    if _DOCUMENT_NUMBER.search(note):
        raise InvalidInput("Leave document and account numbers out of the note.")
    return note


@dataclass(frozen=True, slots=True)
class _Hour:
    """What counts against an agent's hourly limit: each person looked at (with their latest
    look), and each miss (a look that found no one: a made-up id, an unknown address). Misses
    count one each, so probing random ids cannot go on without limit."""

    seen: dict[UUID, datetime]
    misses: list[datetime]
    now: datetime

    @property
    def used(self) -> int:
        return len(self.seen) + len(self.misses)

    def retry_after(self, needed: int) -> int:
        """Seconds until `needed` of the slots used drop out of the hour."""
        lasts = sorted([*self.seen.values(), *self.misses])
        if needed > len(lasts):
            return int(HOUR.total_seconds())
        return max(1, math.ceil((lasts[needed - 1] + HOUR - self.now).total_seconds()))


async def _this_hour(conn: asyncpg.Connection | PoolConnectionProxy, agent: SupportAgent) -> _Hour:
    rows = await conn.fetch(
        """SELECT subject_id, max(at) AS last FROM audit_log
           WHERE actor->>'kind' = 'support' AND actor->>'iss' = $1 AND actor->>'sub' = $2
             AND at > now() - make_interval(secs => $3) AND outcome = 'allowed'
             AND subject_id IS NOT NULL AND action = any($4::text[])
           GROUP BY subject_id
           UNION ALL
           SELECT NULL, at FROM audit_log
           WHERE actor->>'kind' = 'support' AND actor->>'iss' = $1 AND actor->>'sub' = $2
             AND at > now() - make_interval(secs => $3) AND outcome = 'allowed'
             AND subject_id IS NULL AND action = any($4::text[])""",
        agent.issuer,
        agent.sub,
        HOUR.total_seconds(),
        [a.value for a in LOOKS],
    )
    now: datetime = await conn.fetchval("SELECT now()")
    seen = {r["subject_id"]: r["last"] for r in rows if r["subject_id"] is not None}
    misses = [r["last"] for r in rows if r["subject_id"] is None]
    return _Hour(seen, misses, now)


OTHER_PERSON = "This ticket is about someone else: open a ticket for this person."


async def ticket_fits(
    conn: asyncpg.Connection | PoolConnectionProxy, ticket: str, subjects: Sequence[UUID]
) -> bool:
    """A ticket is about one person: once an agent looked at someone under it, it covers only
    them (all those one search found, if it found several). Read from the audit log itself,
    under a lock per ticket held until the caller's transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"support-ticket|{ticket}"
    )
    rows = await conn.fetch(
        """SELECT DISTINCT subject_id FROM audit_log
           WHERE actor->>'kind' = 'support' AND purpose->>'ticket' = $1
             AND outcome = 'allowed' AND subject_id IS NOT NULL""",
        ticket,
    )
    bound = {r["subject_id"] for r in rows}
    return not bound or set(subjects) <= bound


async def admit(
    db: asyncpg.Pool,
    audit_log: audit.GroupCommit,
    agent: SupportAgent,
    access: Access,
    *,
    request_id: str,
    action: Action,
    subjects: Sequence[UUID | None],
    categories: Sequence[str],
    per_hour: int,
) -> None:
    """Writes one audit row per subject (None: nothing matched) when the hourly limit allows,
    else one `denied` row and `LimitReached`. Raises `AuditUnavailable` when the rows
    could not be written: then nothing may be returned.

    The rows go through the process's group commit (`audit_log`) while this transaction holds the
    agent's and the ticket's locks: the next look of the same agent or ticket counts them,
    committed, before it may write its own."""
    wanted = [s for s in subjects if s is not None]
    missed = len(subjects) - len(wanted)
    retry: int | None = None
    other_person = False
    try:
        async with scoped(db, scope=Scope.SUPPORT, timeout=_ACQUIRE_TIMEOUT) as conn:
            # One agent's looks queue here, so the count and the rows are one step.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"support-agent|{agent.issuer}|{agent.sub}",
            )
            hour = await _this_hour(conn, agent)
            needed = hour.used + len({s for s in wanted if s not in hour.seen}) + missed
            if not await ticket_fits(conn, access.ticket, wanted):
                other_person = True
            elif needed > per_hour:
                retry = hour.retry_after(needed - per_hour)
            else:
                written = await asyncio.gather(
                    *(
                        audit.record(
                            audit_log,
                            request_id=request_id,
                            actor=agent,
                            subject_id=sid,
                            action=action,
                            outcome="allowed",
                            purpose=access.purpose(),
                            categories=categories,
                        )
                        for sid in subjects
                    ),
                    return_exceptions=True,
                )
                for failed in written:
                    if isinstance(failed, BaseException):
                        raise failed
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise AuditUnavailable(type(exc).__name__) from None
    if other_person:
        await audit.denied(
            audit_log,
            request_id=request_id,
            actor=agent,
            subject_id=wanted[0] if len(wanted) == 1 else None,
            action=action,
            purpose=access.purpose(),
            categories=categories,
        )
        raise InvalidAccess(OTHER_PERSON)
    if retry is not None:
        await audit.denied(
            audit_log,
            request_id=request_id,
            actor=agent,
            subject_id=wanted[0] if len(wanted) == 1 and action != Action.SUBJECT_FIND else None,
            action=action,
            purpose=access.purpose(),
            categories=categories,
        )
        # The limit's name only: who hit it is in the audit log, not here.
        log.warning("limit reached", extra={"event": "support_subjects_per_hour"})
        raise LimitReached(retry, "support_subjects_per_hour")


def unmaskable(catalogue: Catalogue, category: str, field: str) -> tuple[Category, Field]:
    """The category and field an agent may unmask: known, masked, and never a withheld one."""
    if category not in catalogue.keys:
        raise InvalidInput("Unknown category.")
    cat = catalogue.category(category)
    try:
        f = cat.field(field)
    except KeyError:
        raise InvalidInput("Unknown field.") from None
    if f.withheld:
        raise InvalidInput("This value is never disclosed (CCPA regulations §7024(d)).")
    if f.mask == "none":
        raise InvalidInput("This field is not masked: it is shown as it is.")
    return cat, f


async def field_value(
    stores: Stores, cat: Category, f: Field, subject_id: UUID, record: int | None
) -> str | None:
    """One stored value, read only after its audit row was written. `record` names the row of a
    category with many (its `id`); one-row categories take none."""
    return await stores.value(cat.key, f.name, subject_id, None if record is None else str(record))


def has_records(cat: Category) -> bool:
    return any(f.name == "id" for f in cat.fields)


async def request_export_for(
    db: asyncpg.Pool,
    audit_log: audit.GroupCommit,
    catalogue: Catalogue,
    rules: Rules,
    agent: SupportAgent,
    access: Access,
    subject_id: UUID,
    *,
    format: str,
    purpose: str,
    categories: Sequence[str] | None,
    method: str,
    note: str,
    request_id: str = "-",
) -> ExportRow:
    """An access or portability request opened for a person whose identity the agent verified.
    The bundle goes to the person (recipient `subject`), never to the agent; the person's daily
    limit counts it like one of their own.

    The ticket check, the export and the audit row that binds the ticket to this person commit
    together, under the ticket's lock: two people cannot both be opened under one ticket, and
    an export whose row cannot be written does not stand. Raises `InvalidExportRequest`,
    `LimitReached`, `InvalidAccess` (the ticket is someone else's; recorded as denied)
    or `AuditUnavailable`."""
    keys = exports.check_request(catalogue, format, purpose, categories)
    # The person's exports, and the agents' looks in the audit log (the ticket's person).
    async with scoped(
        db, subject=subject_id, scope=Scope.SUPPORT, timeout=_ACQUIRE_TIMEOUT
    ) as conn:
        if await ticket_fits(conn, access.ticket, [subject_id]):
            row = await exports.create(
                conn,
                rules,
                limit=exports.daily_limit(subject_id, rules.exports_per_day),
                subject_id=subject_id,
                requested_by=actor_of(agent),
                recipient={"kind": "subject"},
                purpose=purpose,
                format=format,
                categories=keys,
                verification={
                    "method": "support_agent",
                    "identity_verified_by": method,
                    "note": note,
                    "verified_by": actor_of(agent),
                    "ticket": access.ticket,
                },
                # The agent recorded how they checked who the person is (a method and a note,
                # never a document number): a reasonably high degree, §7062.
                held=rules.requests.held(Channel.SUPPORT.value, keys),
                request=NewRequest(
                    Channel.SUPPORT,
                    agent,
                    Verification(f"support_agent:{method}", Degree.REASONABLY_HIGH),
                    request_id,
                ),
            )
            await audit.record(
                conn,
                request_id=request_id,
                actor=agent,
                subject_id=subject_id,
                action=Action.EXPORT_REQUEST,
                outcome="allowed",
                purpose=exports.export_purpose(row, **access.purpose(), verification=method),
                categories=row.categories,
            )
            return row
    await audit.denied(
        audit_log,
        request_id=request_id,
        actor=agent,
        subject_id=subject_id,
        action=Action.EXPORT_REQUEST,
        purpose=access.purpose(),
    )
    raise InvalidAccess(OTHER_PERSON)
