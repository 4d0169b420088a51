"""Export requests in GraphQL: `requestExport`, `export(id)`, `exports` and `me { exports }`.

Each resolver parses its arguments, calls one function of `domain.exports` and maps the result
through `schema.outcomes`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import strawberry

from domain import exports
from schema import outcomes
from schema.context import Context
from schema.export_types import Export, ExportInput, RequestExportResult


async def request_export(info: strawberry.Info, input: ExportInput) -> RequestExportResult:
    ctx: Context = info.context
    services = ctx.services
    return await outcomes.request_export(
        ctx,
        exports.request_for_self(
            services.db,
            services.catalogue,
            services.rules,
            ctx.principal,
            format=input.format.value,
            purpose=input.purpose.value,
            categories=input.categories,
            request_id=ctx.request_id,
            stores=services.stores,
        ),
    )


async def export(info: strawberry.Info, id: strawberry.ID) -> Export | None:
    ctx: Context = info.context
    try:
        export_id = UUID(str(id))
    except ValueError:
        return None
    return await outcomes.export(
        ctx,
        exports.seen_by(
            ctx.services.db, ctx.principal, export_id, ctx.request_id, audit_log=ctx.services.audit
        ),
    )


async def my_exports(info: strawberry.Info, first: int = 20) -> list[Export]:
    ctx: Context = info.context
    rows = await exports.mine(ctx.services.db, ctx.principal, first)
    return [Export.of(r, ctx.base_url) for r in rows]


QUERY_FIELDS: dict[str, Any] = {
    "export": strawberry.field(
        resolver=export, description="One of the caller's exports; null when it is not theirs."
    ),
    "exports": strawberry.field(
        resolver=my_exports,
        description="The caller's own export requests, newest first (at most 100).",
    ),
}


async def subject_exports(self: Any, info: strawberry.Info, first: int = 20) -> list[Export]:
    # `me { exports }`: the person's own; the masked (agent) view lists none.
    if self.masked:
        return []
    ctx: Context = info.context
    rows = await exports.for_subject(ctx.services.db, self.sid, first)
    return [Export.of(r, ctx.base_url) for r in rows]


SUBJECT_FIELDS: dict[str, Any] = {
    "exports": strawberry.field(
        resolver=subject_exports,
        description="The person's own export requests, newest first (at most 100).",
    ),
}
MUTATION_FIELDS: dict[str, Any] = {
    "request_export": strawberry.mutation(
        resolver=request_export,
        description="Ask for a copy of your data. Needs a recent, strong login.",
    ),
}
