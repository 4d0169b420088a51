"""Export requests in GraphQL: `requestExport`, `export(id)` and `exports`.

Each resolver is a few lines over `domain.exports`; expected failures are union members.
"""

from __future__ import annotations

import contextlib
import enum
from datetime import UTC, datetime
from typing import Annotated, Any, NewType
from uuid import UUID

import strawberry
from strawberry.types.scalar import ScalarDefinition

from domain import audit, exports
from domain.audit import Action
from domain.errors import LimitReached, StepUpRequired
from domain.exports import ExportRow
from domain.principals import Customer
from schema import outcomes
from schema.context import Context

# GraphQL's Int is 32 bits; a bundle can be larger than 2 GiB.
ByteCount = NewType("ByteCount", int)
SCALARS: dict[object, ScalarDefinition] = {
    ByteCount: strawberry.scalar(
        name="ByteCount",
        serialize=int,
        parse_value=int,
        description="A number of bytes; may exceed 32 bits (a JSON number).",
    )
}


@strawberry.enum(description="File format of the data files in the bundle.")
class ExportFormat(enum.Enum):
    JSON = "json"
    CSV = "csv"


@strawberry.enum(description="Why the copy is made, which decides what it holds.")
class ExportPurpose(enum.Enum):
    ACCESS = "access"
    PORTABILITY = "portability"


@strawberry.enum(description="Where an export stands.")
class ExportStatus(enum.Enum):
    READY = "ready"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"


@strawberry.input(description="What to export.")
class ExportInput:
    format: ExportFormat = strawberry.field(description="JSON or CSV data files.")
    purpose: ExportPurpose = strawberry.field(
        default=ExportPurpose.ACCESS,
        description="ACCESS: every category (GDPR Art. 15, CCPA right to know). PORTABILITY: "
        "only data you provided or that was observed from your use (GDPR Art. 20).",
    )
    categories: list[str] | None = strawberry.field(
        default=None, description="Only these category keys; all of them when left out."
    )


@strawberry.type(description="How strongly the person had proved who they were when they asked.")
class ExportVerification:
    acr: str | None = strawberry.field(description="Authentication context class of the login.")
    auth_time: datetime | None = strawberry.field(description="When that login happened.")


@strawberry.type(description="A request for a copy of personal data, and its download.")
class Export:
    id: strawberry.ID = strawberry.field(description="Export id.")
    status: ExportStatus = strawberry.field(description="Where the export stands.")
    format: ExportFormat = strawberry.field(description="Format of the data files.")
    purpose: ExportPurpose = strawberry.field(description="Access or portability.")
    categories: list[str] = strawberry.field(description="Category keys asked for.")
    records: int | None = strawberry.field(description="Records in the last complete download.")
    bytes: ByteCount | None = strawberry.field(description="Size of the last complete download.")
    sha256: str | None = strawberry.field(description="SHA-256 of the last complete download.")
    downloads: int = strawberry.field(description="How many downloads were started.")
    created_at: datetime = strawberry.field(description="When it was asked for.")
    finished_at: datetime | None = strawberry.field(description="When the last download ended.")
    expires_at: datetime = strawberry.field(description="After this the link no longer works.")
    failure: str | None = strawberry.field(description="Why the last download failed, if it did.")
    download_url: str | None = strawberry.field(
        description="GET it with the same bearer token: the ZIP, streamed. One whole download "
        "per link (a failed one may be retried); null once used or expired."
    )
    verification: ExportVerification = strawberry.field(
        description="The login strength that was met when it was asked for."
    )

    @classmethod
    def of(cls, row: ExportRow, base_url: str) -> Export:
        status = ExportStatus(row.status_at(datetime.now(UTC)))
        auth_time = row.verification.get("auth_time")
        return cls(
            id=strawberry.ID(str(row.id)),
            status=status,
            format=ExportFormat(row.format),
            purpose=ExportPurpose(row.purpose),
            categories=list(row.categories),
            records=row.records,
            bytes=None if row.bytes is None else ByteCount(row.bytes),
            sha256=row.sha256,
            downloads=row.downloads,
            created_at=row.created_at,
            finished_at=row.finished_at,
            expires_at=row.expires_at,
            failure=row.failure,
            download_url=f"{base_url}/exports/{row.id}"
            if row.downloadable_at(datetime.now(UTC))
            else None,
            verification=ExportVerification(
                acr=row.verification.get("acr"),
                auth_time=None
                if not isinstance(auth_time, int)
                else datetime.fromtimestamp(auth_time, UTC),
            ),
        )


@strawberry.type(
    description="A fresher or stronger login is needed (RFC 9470): log in again with these "
    "`acr_values` and `max_age`, then repeat the request."
)
class StrongerLoginRequired:
    message: str = strawberry.field(description="What to do, in plain words.")
    acr_values: list[str] = strawberry.field(description="Acceptable login strengths.")
    max_age: int = strawberry.field(description="The login must be at most this many seconds old.")

    @classmethod
    def of(cls, exc: StepUpRequired, message: str) -> StrongerLoginRequired:
        return cls(**outcomes.step_up(exc, message))


@strawberry.type(description="Too many exports in the last 24 hours; try again later.")
class ExportLimitReached:
    message: str = strawberry.field(description="What happened, in plain words.")
    retry_after: int = strawberry.field(description="Seconds until a new export may be asked for.")


@strawberry.type(description="The request cannot be met as asked.")
class InvalidExportRequest:
    message: str = strawberry.field(description="What is wrong with it.")


RequestExportResult = Annotated[
    Export | StrongerLoginRequired | ExportLimitReached | InvalidExportRequest,
    strawberry.union("RequestExportResult", description="The export, or why there is none."),
]


def _customer(info: strawberry.Info) -> Customer | None:
    principal = info.context.principal
    return principal if isinstance(principal, Customer) else None


async def request_export(info: strawberry.Info, input: ExportInput) -> RequestExportResult:
    ctx: Context = info.context
    principal = _customer(info)
    if principal is None:
        return InvalidExportRequest(message="Only a person can ask for a copy of their own data.")
    services = ctx.services
    try:
        row = await exports.request_for_self(
            services.db,
            services.catalogue,
            services.rules,
            principal,
            format=input.format.value,
            purpose=input.purpose.value,
            categories=input.categories,
            request_id=ctx.request_id,
        )
    except StepUpRequired as exc:
        return StrongerLoginRequired.of(
            exc, "Log in again, recently and strongly, to export your data."
        )
    except LimitReached as exc:
        return ExportLimitReached(
            message="You have asked for the most exports allowed in 24 hours.",
            retry_after=outcomes.limited(ctx, exc),
        )
    except exports.InvalidExportRequest as exc:
        return InvalidExportRequest(message=str(exc))
    return Export.of(row, ctx.base_url)


async def export(info: strawberry.Info, id: strawberry.ID) -> Export | None:
    ctx: Context = info.context
    principal = ctx.principal
    try:
        export_id = UUID(str(id))
    except ValueError:
        return None
    row = await exports.get(ctx.services.db, export_id)
    if row is None or principal is None:
        return None
    if not exports.may_download(principal, row):
        # Someone else's export is as absent as one that never was, and the attempt is recorded.
        with contextlib.suppress(audit.AuditUnavailable):
            await audit.record(
                ctx.services.db,
                request_id=ctx.request_id,
                actor=principal,
                subject_id=row.subject_id,
                action=Action.ACCESS_DENIED,
                outcome="denied",
                purpose={"export_id": str(row.id)},
            )
        return None
    return Export.of(row, ctx.base_url)


async def my_exports(info: strawberry.Info, first: int = 20) -> list[Export]:
    ctx: Context = info.context
    principal = _customer(info)
    if principal is None or principal.subject_id is None:
        return []
    rows = await exports.for_subject(ctx.services.db, principal.subject_id, max(1, min(first, 100)))
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
    rows = await exports.for_subject(ctx.services.db, self.sid, max(1, min(first, 100)))
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
