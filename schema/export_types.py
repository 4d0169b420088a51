"""The GraphQL shapes of exports: the export, its input and enums, and the union members of
the failures a request can meet (`schema/outcomes.py` chooses them)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from domain.exports import ExportRow

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
    def of(cls, row: ExportRow, base_url: str | None) -> Export:
        """`base_url` None: no link (the person's view of what a partner received)."""
        status = ExportStatus(row.current_status)
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
            if base_url is not None and row.downloadable
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
