"""Support agents in GraphQL (issue 7): `findSubjects`, `subject`, `unmaskField`,
`requestExportFor`, and the person's own `me { accessLog }`.

Agents get the generated `Subject` with `masked` set. Each root resolver parses its arguments and
calls one function of `domain.agents`, which writes the audit row before it returns, so nothing
nested is even read before the look is on record; `schema.outcomes` maps what comes back (when
the row cannot be written the answer is an error and no data).
"""

# No `from __future__ import annotations`: root fields are generated with real annotations.

from typing import Any
from uuid import UUID

import strawberry

from domain import agents, audit, support
from domain.agents import Look
from schema import outcomes
from schema._parse import selected_categories, uuid_or_none
from schema.context import Context
from schema.export_types import ExportInput
from schema.support_types import (
    AccessLogEntry,
    IdentityVerification,
    RequestExportForResult,
    SupportAccess,
    UnmaskResult,
)


def _look(info: strawberry.Info, access: SupportAccess) -> Look:
    ctx: Context = info.context
    return Look(ctx.services, ctx.principal, access.ticket, access.reason, ctx.request_id)


def query_fields(subject: Any) -> dict[str, Any]:
    """`subject` and `findSubjects`, returning the generated Subject type, masked."""

    def masked(sid: UUID) -> Any:
        return subject(id=strawberry.ID(str(sid)), sid=sid, masked=True)

    async def find_subjects(info: strawberry.Info, email: str, access: SupportAccess) -> Any:
        ctx: Context = info.context
        found = await outcomes.looked(
            ctx, agents.find_subjects(_look(info, access), email, selected_categories(info))
        )
        ctx.support_misses += not found
        return [masked(sid) for sid in found]

    async def read_subject(info: strawberry.Info, id: strawberry.ID, access: SupportAccess) -> Any:
        ctx: Context = info.context
        sid = await outcomes.looked(
            ctx,
            agents.read_subject(_look(info, access), uuid_or_none(id), selected_categories(info)),
        )
        ctx.support_misses += sid is None
        return None if sid is None else masked(sid)

    find_subjects.__annotations__["return"] = list[subject]
    read_subject.__annotations__["return"] = subject | None
    where = (
        "Support agents only (scope support:read). `access` is required: the ticket id is "
        f"{support.TICKET_FORMAT}; the reason {support.REASON_MIN} to {support.REASON_MAX} "
        "characters. Contact values are masked; every look is audited first and counts "
        "towards the agent's hourly limit of different people, a look that finds no one as "
        "one too (HTTP 429 beyond it)."
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
    look = _look(info, access)
    return await outcomes.unmask(
        info.context, agents.unmask(look, uuid_or_none(subject), category, field, record)
    )


async def request_export_for(
    info: strawberry.Info,
    subject: strawberry.ID,
    access: SupportAccess,
    input: ExportInput,
    verification: IdentityVerification,
) -> RequestExportForResult:
    return await outcomes.export_for(
        info.context,
        agents.request_export(
            _look(info, access),
            uuid_or_none(subject),
            format=input.format.value,
            purpose=input.purpose.value,
            categories=input.categories,
            method=verification.method.value,
            note=verification.note,
        ),
    )


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
