"""Support agents in GraphQL (issue 7): `findSubjects`, `subject`, `unmaskField`,
`requestExportFor`, and the person's own `me { accessLog }`.

Agents get the generated `Subject` with `masked` set. Each root resolver writes its audit row
(`domain.support.admit`) before it returns the Subject, so nothing nested is even read before the
look is on record; when the row cannot be written the answer is an error and no data.
"""

# No `from __future__ import annotations`: root fields are generated with real annotations.

import contextlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from domain import audit, exports, support
from domain.audit import Action, AuditUnavailable
from domain.errors import LimitReached, StepUpRequired
from domain.principals import SupportAgent
from domain.stepup import require_strong_login
from domain.support import Access, InvalidAccess, InvalidInput
from schema import outcomes
from schema.context import Context
from schema.errors import AccessRefused, BadArgument
from schema.errors import LimitReached as LimitError
from schema.exports import ExportInput, ExportLimitReached, InvalidExportRequest
from schema.exports import StrongerLoginRequired as StrongerLogin
from schema.subject import camel
from schema.support_types import (
    AccessLogEntry,
    IdentityVerification,
    InvalidSupportAccess,
    OpenedExport,
    RequestExportForResult,
    SupportAccess,
    UnmaskedValue,
    UnmaskRefused,
    UnmaskResult,
)
from schema.support_types import SupportLimitReached as LimitResult


async def _deny(
    ctx: Context,
    action: Action,
    subject_id: UUID | None = None,
    categories: Sequence[str] = (),
    purpose: dict[str, str] | None = None,
) -> None:
    # A refusal returns nothing whether or not its row is written.
    with contextlib.suppress(AuditUnavailable):
        await audit.record(
            ctx.services.db,
            request_id=ctx.request_id,
            actor=ctx.principal,
            subject_id=subject_id,
            action=action,
            outcome="denied",
            purpose=purpose,
            categories=categories,
        )


async def _checked(
    ctx: Context, action: Action, access: SupportAccess, subject_id: UUID | None = None
) -> tuple[SupportAgent, Access]:
    agent = ctx.principal
    if not isinstance(agent, SupportAgent):  # e.g. a partner token that also carries the scope
        await _deny(ctx, Action.ACCESS_DENIED, subject_id)
        raise outcomes.forbidden(ctx)
    try:
        return agent, Access.of(access.ticket, access.reason)
    except InvalidAccess as exc:
        await _deny(ctx, action, subject_id)
        raise AccessRefused(str(exc)) from None


async def _admit(
    ctx: Context,
    agent: SupportAgent,
    access: Access,
    action: Action,
    subjects: Sequence[UUID | None],
    categories: Sequence[str],
) -> None:
    """Raises `LimitReached` (HTTP 429) or `AuditDown` (HTTP 503)."""
    services = ctx.services
    try:
        await support.admit(
            services.db,
            agent,
            access,
            request_id=ctx.request_id,
            action=action,
            subjects=subjects,
            categories=categories,
            per_hour=services.rules.support_subjects_per_hour,
        )
    except LimitReached as exc:
        outcomes.limited(ctx, exc)
        raise
    except InvalidAccess as exc:  # a ticket about someone else (its denied row is written)
        raise AccessRefused(str(exc)) from None
    except AuditUnavailable:
        raise outcomes.audit_down(ctx) from None


def selected_categories(info: strawberry.Info) -> list[str]:
    """The category keys the query selects under this field, through fragments too."""
    ctx: Context = info.context
    by_name = {camel(c.key): c.key for c in ctx.services.catalogue}
    found: set[str] = set()

    def walk(selections: Sequence[Selection]) -> None:
        for sel in selections:
            if isinstance(sel, SelectedField):
                if sel.name in by_name:
                    found.add(by_name[sel.name])
            else:
                walk(sel.selections)

    for root in info.selected_fields:
        walk(root.selections)
    return [c.key for c in ctx.services.catalogue if c.key in found]


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _limited(exc: LimitReached) -> LimitError:
    return LimitError(
        "You have looked at the most people allowed in an hour.", retryAfter=exc.retry_after
    )


def query_fields(subject: Any) -> dict[str, Any]:
    """`subject` and `findSubjects`, returning the generated Subject type, masked."""

    def masked(sid: UUID) -> Any:
        return subject(id=strawberry.ID(str(sid)), sid=sid, masked=True)

    async def find_subjects(info: strawberry.Info, email: str, access: SupportAccess) -> Any:
        ctx: Context = info.context
        agent, why = await _checked(ctx, Action.SUBJECT_FIND, access)
        try:
            address = support.normalise_email(email)
        except InvalidInput as exc:
            await _deny(ctx, Action.SUBJECT_FIND, purpose=why.purpose())
            raise BadArgument(str(exc)) from None
        found = await ctx.services.stores.subjects_by_email(address, support.MAX_MATCHES)
        cats = selected_categories(info)
        try:
            # A search that matches no one is recorded too: one row with no subject.
            await _admit(ctx, agent, why, Action.SUBJECT_FIND, found or [None], cats)
        except LimitReached as exc:
            raise _limited(exc) from None
        return [masked(sid) for sid in found]

    async def read_subject(info: strawberry.Info, id: strawberry.ID, access: SupportAccess) -> Any:
        ctx: Context = info.context
        sid = _uuid(id)
        agent, why = await _checked(ctx, Action.SUBJECT_READ, access, sid)
        if sid is None:
            await _deny(ctx, Action.SUBJECT_READ, purpose=why.purpose())
            raise BadArgument("`id` is not a subject id.")
        exists = await ctx.services.stores.subject_exists(sid)
        cats = selected_categories(info)
        try:
            await _admit(ctx, agent, why, Action.SUBJECT_READ, [sid if exists else None], cats)
        except LimitReached as exc:
            raise _limited(exc) from None
        return masked(sid) if exists else None

    find_subjects.__annotations__["return"] = list[subject]
    read_subject.__annotations__["return"] = subject | None
    where = (
        "Support agents only (scope support:read). `access` is required: the ticket id is "
        f"{support.TICKET_FORMAT}; the reason {support.REASON_MIN} to {support.REASON_MAX} "
        "characters. Contact values are masked; every look is audited first and counts "
        "towards the agent's hourly limit of different people (HTTP 429 beyond it)."
    )
    return {
        "subject": strawberry.field(
            resolver=read_subject,
            description=f"One person by subject id, masked; null when there is none. {where}",
        ),
        "find_subjects": strawberry.field(
            resolver=find_subjects,
            description="People whose e-mail address is exactly this one (trimmed, case "
            f"ignored; no wildcards), at most {support.MAX_MATCHES}, masked. {where}",
        ),
    }


async def unmask_field(
    info: strawberry.Info,
    subject: strawberry.ID,
    category: str,
    field: str,
    access: SupportAccess,
    record: int | None = None,
) -> UnmaskResult:
    ctx: Context = info.context
    services = ctx.services
    sid = _uuid(subject)
    try:
        agent, why = await _checked(ctx, Action.FIELD_UNMASK, access, sid)
    except AccessRefused as exc:
        return InvalidSupportAccess(message=str(exc))
    try:
        cat, f = support.unmaskable(services.catalogue, category, field)
    except InvalidInput as exc:
        known = category in services.catalogue.keys and any(
            x.name == field for x in services.catalogue.category(category).fields
        )
        names = [f"{category}.{field}"] if known else []
        await _deny(ctx, Action.FIELD_UNMASK, sid, names, why.purpose())
        return UnmaskRefused(message=str(exc))
    names = [f"{cat.key}.{f.name}"]
    refusal = None
    if sid is None or not await services.stores.subject_exists(sid):
        refusal = "No such subject."
    elif support.has_records(cat) != (record is not None):
        refusal = "Name the record (its `id`) for a category with many records, and only then."
    if refusal is not None:
        await _deny(ctx, Action.FIELD_UNMASK, sid, names, why.purpose())
        return UnmaskRefused(message=refusal)
    assert sid is not None
    rules = services.rules
    try:
        require_strong_login(agent, rules.step_up_acr_values, rules.step_up_max_age)
    except StepUpRequired as exc:
        await _deny(ctx, Action.FIELD_UNMASK, sid, names, why.purpose())
        return StrongerLogin.of(exc, "Log in again, recently and strongly, to unmask a value.")
    try:
        await _admit(ctx, agent, why, Action.FIELD_UNMASK, [sid], names)
    except AccessRefused as exc:
        return InvalidSupportAccess(message=str(exc))
    except LimitReached as exc:
        return LimitResult(
            message="You have looked at the most people allowed in an hour.",
            retry_after=exc.retry_after,
        )
    value = await support.field_value(services.stores, cat, f, sid, record)
    return UnmaskedValue(
        subject=strawberry.ID(str(sid)), category=cat.key, field=f.name, record=record, value=value
    )


async def request_export_for(
    info: strawberry.Info,
    subject: strawberry.ID,
    access: SupportAccess,
    input: ExportInput,
    verification: IdentityVerification,
) -> RequestExportForResult:
    ctx: Context = info.context
    services = ctx.services
    sid = _uuid(subject)
    try:
        agent, why = await _checked(ctx, Action.EXPORT_REQUEST, access, sid)
    except AccessRefused as exc:
        return InvalidSupportAccess(message=str(exc))
    try:
        note = support.verification_note(verification.note)
        if sid is None or not await services.stores.subject_exists(sid):
            raise exports.InvalidExportRequest("No such subject.")
        row = await support.request_export_for(
            services.db,
            services.catalogue,
            services.rules,
            agent,
            why,
            sid,
            format=input.format.value,
            purpose=input.purpose.value,
            categories=input.categories,
            method=verification.method.value,
            note=note,
            request_id=ctx.request_id,
        )
    except InvalidAccess as exc:  # the ticket is someone else's (its denied row is written)
        return InvalidSupportAccess(message=str(exc))
    except (InvalidInput, exports.InvalidExportRequest) as exc:
        await _deny(ctx, Action.EXPORT_REQUEST, sid, purpose=why.purpose())
        return InvalidExportRequest(message=str(exc))
    except LimitReached as exc:
        await _deny(ctx, Action.EXPORT_REQUEST, sid, purpose=why.purpose())
        return ExportLimitReached(
            message="This person has had the most exports allowed in 24 hours.",
            retry_after=outcomes.limited(ctx, exc),
        )
    except AuditUnavailable:
        raise outcomes.audit_down(ctx) from None
    return OpenedExport.of(row)


async def access_log(self: Any, info: strawberry.Info, first: int = 50) -> list[AccessLogEntry]:
    # Only the person themself sees who looked: the masked (agent) view has none of it.
    if self.masked:
        return []
    ctx: Context = info.context
    entries = await audit.access_log(ctx.services.db, self.sid, max(1, min(first, 100)))
    return [AccessLogEntry.of(e) for e in entries]


SUBJECT_FIELDS: dict[str, Any] = {
    "access_log": strawberry.field(
        resolver=access_log,
        description="Who else looked at this data: partners (by client id) and support agents "
        "(by ticket, never by name), newest first, at most `first` (100).",
    ),
}
MUTATION_FIELDS: dict[str, Any] = {
    "unmask_field": strawberry.mutation(
        resolver=unmask_field,
        description="Support: show one masked value as stored. Needs a recent, strong login; "
        "audited per field; a withheld (§7024(d)) value never. `record` is the record's `id` "
        "in a category with many records.",
    ),
    "request_export_for": strawberry.mutation(
        resolver=request_export_for,
        description="Support: open an access or portability request for a person whose "
        "identity you verified. The bundle goes to the person, who downloads it with their "
        "own login; you get its id and status, never a link.",
    ),
}
