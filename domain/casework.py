"""Privacy staff working the queue of requests (issue 17, item 5): list, read, extend, refuse,
verify and approve. Each act checks the caller, changes the request and writes its audit row
in one transaction, then tells the person (`domain.notices`) once it is committed.

Raises `Forbidden` (not privacy staff), `NotFound` (no such request), `CaseRefused` (the act
does not fit the request as it stands: closed, already extended, past its first date, …) or
`AuditUnavailable` (then nothing changed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from domain import audit, deadlines, exports, support
from domain.audit import Action, actor_of
from domain.errors import Forbidden, LimitReached, NotFound, Refused
from domain.exports import ExportRow
from domain.freetext import identifying
from domain.notices import Notice, RefusalBasis
from domain.principals import Principal, PrivacyStaff
from domain.requests import CLOSED, Case, Conn, Degree, RequestRow, Status, cases
from domain.services import Services
from domain.support import InvalidInput
from stores.scope import Scope, bind, scoped

log = logging.getLogger("dsar.requests")

REASON_MIN, REASON_MAX = 10, 500
PAGE_MAX = 100


class CaseRefused(Refused):
    """The act does not fit the request as it stands; `message` says why."""


@dataclass(frozen=True, slots=True)
class Page:
    cases: list[Case]
    has_next: bool


def staff(principal: Principal | None) -> PrivacyStaff:
    if not isinstance(principal, PrivacyStaff):
        raise Forbidden
    return principal


def checked_reason(reason: str, what: str = "reason") -> str:
    text = " ".join((reason or "").split())
    if not REASON_MIN <= len(text) <= REASON_MAX or not text.isprintable():
        raise CaseRefused(
            f"The {what} must be plain text of {REASON_MIN} to {REASON_MAX} characters."
        )
    found = identifying(text)
    if found is not None:
        # Kept forever in the append-only audit log, like a support agent's reason.
        raise CaseRefused(
            f"The {what} holds what looks like {found}; it is kept forever in the audit log, "
            "so give the reason without it."
        )
    return text


async def queue(
    services: Services,
    principal: Principal | None,
    *,
    status: Status | None = None,
    overdue: bool | None = None,
    first: int = 20,
    after: tuple[datetime, UUID] | None = None,
) -> Page:
    """Requests by the date they are due, earliest first, so the overdue come first; `after`
    is the (date, id) of the last one of the page before."""
    staff(principal)
    size = max(1, min(first, PAGE_MAX))
    async with scoped(services.db, scope=Scope.STAFF) as conn:
        return await _page(conn, status, overdue, size, after)


async def _page(
    conn: Conn,
    status: Status | None,
    overdue: bool | None,
    size: int,
    after: tuple[datetime, UUID] | None,
) -> Page:
    rows = await conn.fetch(
        """SELECT * FROM requests
           WHERE ($1::text IS NULL OR status = $1)
             AND ($2::boolean IS NULL
                  OR $2 = (closed_at IS NULL AND coalesce(extended_to, due_at) < now()))
             AND ($3::timestamptz IS NULL
                  OR (coalesce(extended_to, due_at), id) > ($3::timestamptz, $4::uuid))
           ORDER BY coalesce(extended_to, due_at), id
           LIMIT $5""",
        None if status is None else status.value,
        overdue,
        None if after is None else after[0],
        None if after is None else after[1],
        size + 1,
    )
    found = await cases(conn, [RequestRow.of(r) for r in rows[:size]])
    return Page(found, len(rows) > size)


async def one(services: Services, principal: Principal | None, req_id: UUID) -> Case:
    staff(principal)
    async with scoped(services.db, scope=Scope.STAFF) as conn:
        row = await conn.fetchrow("SELECT * FROM requests WHERE id = $1", req_id)
        if row is None:
            raise NotFound
        (case,) = await cases(conn, [RequestRow.of(row)])
    return case


async def _locked(conn: Conn, req_id: UUID) -> RequestRow:
    await bind(conn, scope=Scope.STAFF)
    row = await conn.fetchrow("SELECT * FROM requests WHERE id = $1 FOR UPDATE", req_id)
    if row is None:
        raise NotFound
    req = RequestRow.of(row)
    if req.status in CLOSED:
        raise CaseRefused("The request is closed already.")
    return req


async def _step(
    conn: Conn,
    who: PrivacyStaff,
    req: RequestRow,
    action: Action,
    request_id: str,
    **purpose: str,
) -> None:
    await audit.record(
        conn,
        request_id=request_id,
        actor=who,
        subject_id=req.subject_id,
        action=action,
        outcome="allowed",
        purpose={"request": str(req.id), **purpose},
    )


async def extend(
    services: Services, principal: Principal | None, req_id: UUID, reason: str, request_id: str
) -> Case:
    """Moves the due date as far as the law allows (GDPR two more months, CCPA 45 more days),
    only with a reason, and only before the first date has passed: the person is told the
    reason before then (GDPR Art. 12(3); CCPA regulations §7021(b))."""
    who = staff(principal)
    text = checked_reason(reason)
    async with services.db.acquire() as conn, conn.transaction():
        req = await _locked(conn, req_id)
        if req.extended_to is not None:
            raise CaseRefused("The request was extended already; the law allows it once.")
        if await conn.fetchval("SELECT now() > $1::timestamptz", req.due_at):
            raise CaseRefused(
                "The first due date has passed: an extension must be told to the person before it."
            )
        limit = deadlines.dates(
            services.rules.requests, req.jurisdiction, req.received_at, req.time_zone
        ).extend_limit
        row = await conn.fetchrow(
            """UPDATE requests SET extended_to = $2, extension_reason = $3 WHERE id = $1
               RETURNING *""",
            req.id,
            limit,
            text,
        )
        assert row is not None
        req = RequestRow.of(row)
        await _step(conn, who, req, Action.REQUEST_EXTEND, request_id, reason=text)
    told = await notify(services, req, lambda to: services.composer.extension(req, to))
    return replace(await one(services, principal, req_id), told=told)


async def refuse(
    services: Services,
    principal: Principal | None,
    req_id: UUID,
    reason: str,
    basis: RefusalBasis,
    request_id: str,
) -> Case:
    """Closes the request as refused, with the basis in law; the person is told why and how
    to complain to a supervisory authority."""
    who = staff(principal)
    text = checked_reason(reason)
    async with services.db.acquire() as conn, conn.transaction():
        req = await _locked(conn, req_id)
        row = await conn.fetchrow(
            """UPDATE requests SET status = 'refused', closed_at = now(), refusal_basis = $2,
                                   refusal_reason = $3
               WHERE id = $1 RETURNING *""",
            req.id,
            basis.value,
            text,
        )
        assert row is not None
        req = RequestRow.of(row)
        await _step(
            conn, who, req, Action.REQUEST_REFUSE, request_id, basis=basis.value, reason=text
        )
    told = await notify(services, req, lambda to: services.composer.refusal(req, to))
    return replace(await one(services, principal, req_id), told=told)


async def verify(
    services: Services,
    principal: Principal | None,
    req_id: UUID,
    method: str,
    note: str | None,
    request_id: str,
) -> Case:
    """Staff record what they checked to verify the person (a method, and a note without
    document numbers): a reasonably high degree (CCPA regulations §7062)."""
    who = staff(principal)
    try:
        text = support.verification_note(note)
    except InvalidInput as exc:
        raise CaseRefused(exc.message) from None
    async with services.db.acquire() as conn, conn.transaction():
        req = await _locked(conn, req_id)
        if req.channel == "agent" and req.subject_id is None:
            # CCPA regulations §7063: an agent's request is acted on only once the person
            # confirmed, from their own address, that they gave the permission.
            raise CaseRefused("The person has not confirmed the agent's permission yet.")
        row = await conn.fetchrow(
            """UPDATE requests SET verification_method = $2, verification_degree = $3,
                                   verified_at = now(),
                                   status = CASE WHEN status IN ('received', 'verifying')
                                                 THEN 'in_progress' ELSE status END
               WHERE id = $1 RETURNING *""",
            req.id,
            f"staff:{method}",
            Degree.REASONABLY_HIGH.value,
        )
        assert row is not None
        req = RequestRow.of(row)
        purpose: dict[str, Any] = {"verification": method}
        if text:
            purpose["reason"] = text
        await _step(conn, who, req, Action.REQUEST_VERIFY, request_id, **purpose)
        copy = await _open_copy(services, conn, who, req, method, request_id)
    case = await one(services, principal, req_id)
    if copy is None:
        return case
    told = await notify(
        services,
        req,
        lambda to: services.composer.ready(req, to, copy.expires_at, _titles(services, case.held)),
    )
    return replace(case, told=told)


def _titles(services: Services, keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(services.catalogue.category(k).title for k in keys)


async def _open_copy(
    services: Services,
    conn: Conn,
    who: PrivacyStaff,
    req: RequestRow,
    method: str,
    request_id: str,
) -> ExportRow | None:
    """A request joined to a person and now verified to a reasonably high degree, with no copy
    yet, gets its copy: an export for the person to download from their account page, in the
    same transaction as the verification (categories the catalogue holds for review wait)."""
    if req.subject_id is None or req.status != Status.IN_PROGRESS:
        return None
    if await conn.fetchval("SELECT count(*) FROM exports WHERE request_id = $1", req.id):
        return None
    rules = services.rules
    categories = exports.check_request(services.catalogue, "json", req.kind, None)
    try:
        return await _export(
            services,
            conn,
            who,
            req,
            categories,
            {"method": f"staff:{method}", "verified_by": actor_of(who)},
            request_id,
            limit=exports.daily_limit(req.subject_id, rules.exports_per_day),
            held=rules.requests.held(req.channel, categories),
        )
    except LimitReached:
        raise CaseRefused(
            "This person has had the most copies allowed in 24 hours: verify again later."
        ) from None


async def _none(conn: Conn) -> None:
    """No limit: what was held back was asked for already, within the limit then."""


async def _export(
    services: Services,
    conn: Conn,
    who: PrivacyStaff,
    req: RequestRow,
    categories: list[str],
    verification: dict[str, Any],
    request_id: str,
    *,
    limit: Any = _none,
    held: list[str] | None = None,
) -> ExportRow:
    """An export answering `req`, opened by staff, with its audit row."""
    assert req.subject_id is not None
    await bind(conn, subject=req.subject_id, scope=Scope.STAFF)
    row = await exports.create(
        conn,
        services.rules,
        limit=limit,
        subject_id=req.subject_id,
        requested_by=actor_of(who),
        recipient={"kind": "subject"},
        purpose=req.kind,
        format="json",
        categories=categories,
        verification=verification,
        request=req.id,
        held=held or (),
    )
    await audit.record(
        conn,
        request_id=request_id,
        actor=who,
        subject_id=req.subject_id,
        action=Action.EXPORT_REQUEST,
        outcome="allowed",
        purpose=exports.export_purpose(row),
        categories=row.categories,
    )
    return row


async def approve(
    services: Services, principal: Principal | None, req_id: UUID, request_id: str
) -> Case:
    """Releases what was held for review (GDPR Art. 15(4)): the held categories are opened as a
    copy of their own for the person, who is e-mailed that it is ready; the request goes on."""
    who = staff(principal)
    async with services.db.acquire() as conn, conn.transaction():
        req = await _locked(conn, req_id)
        if req.status != Status.IN_REVIEW:
            raise CaseRefused("Only a request held for review can be approved.")
        held = await conn.fetchval(
            """SELECT categories FROM audit_log
               WHERE purpose ? 'request' AND purpose->>'request' = $1 AND action = $2
               ORDER BY seq DESC LIMIT 1""",
            str(req.id),
            Action.REQUEST_HOLD.value,
        )
        row = await conn.fetchrow(
            "UPDATE requests SET status = 'in_progress' WHERE id = $1 RETURNING *", req.id
        )
        assert row is not None
        req = RequestRow.of(row)
        await _step(conn, who, req, Action.REQUEST_APPROVE, request_id)
        copy = None
        if held and req.subject_id is not None:
            copy = await _export(
                services, conn, who, req, list(held), {"approved_by": actor_of(who)}, request_id
            )
    case = await one(services, principal, req_id)
    if copy is None:
        return case
    told = await notify(services, req, lambda to: services.composer.ready(req, to, copy.expires_at))
    return replace(case, told=told)


async def address_of(services: Services, subject_id: UUID | None) -> str | None:
    """The person's e-mail address as the company's records hold it (the profile's)."""
    if subject_id is None:
        return None
    person = await services.stores.person_of(subject_id, all_keys=False)
    if person is None:
        return None
    row = await services.stores.single("profile", person)
    email = None if row is None else row.get("email")
    return email if isinstance(email, str) and "@" in email else None


async def notify(services: Services, req: RequestRow, build: Any) -> bool:
    """Sends the message `build(address)` makes to the person; a person without an address on
    record, or a store that fails, is logged (ids only) and the act stands."""
    try:
        to = await address_of(services, req.subject_id)
    except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
        log.warning("no address read for a notice", extra={"error": type(exc).__name__})
        return False
    if to is None:
        log.warning("no address on record for a notice", extra={"event": str(req.id)})
        return False
    notice: Notice = build(to)
    return await services.mailer.send(notice)
