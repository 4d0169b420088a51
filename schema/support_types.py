"""The GraphQL shapes of support access: inputs, results, typed errors and the access log."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from domain.agents import Unmasked
from domain.audit import AccessEntry
from domain.exports import ExportRow
from domain.support import REASON_MAX, REASON_MIN, TICKET_FORMAT
from schema.export_types import (
    ByteCount,
    ExportFormat,
    ExportLimitReached,
    ExportPurpose,
    ExportStatus,
    InvalidExportRequest,
    StrongerLoginRequired,
)


@strawberry.input(description="Why a support agent looks at a person: required for every look.")
class SupportAccess:
    ticket: str = strawberry.field(description=f"The help-desk ticket id: {TICKET_FORMAT}.")
    reason: str = strawberry.field(
        description=f"Why, in your own words: {REASON_MIN} to {REASON_MAX} characters after "
        "trimming, plain text. Recorded in the audit log."
    )


@strawberry.enum(description="How the person's identity was verified before acting for them.")
class IdentityCheck(enum.Enum):
    EMAIL_CONFIRMED = "email_confirmed"
    ID_DOCUMENT = "id_document"
    ACCOUNT_LOGIN = "account_login"


@strawberry.input(description="How the agent verified who the person is. Never a document number.")
class IdentityVerification:
    method: IdentityCheck = strawberry.field(description="How the identity was verified.")
    note: str | None = strawberry.field(
        default=None,
        description="A few words on it (at most 500 characters); numbers of 4 digits or more "
        "are refused, so no document or account number is kept.",
    )


@strawberry.type(description="One value an agent unmasked; the look is in the audit log.")
class UnmaskedValue:
    subject: strawberry.ID = strawberry.field(description="The subject's id.")
    category: str = strawberry.field(description="Category key.")
    field: str = strawberry.field(description="Field name.")
    record: int | None = strawberry.field(description="The record's id, for many-record lists.")
    value: str | None = strawberry.field(description="The value as stored; null when none.")

    @classmethod
    def of(cls, u: Unmasked) -> UnmaskedValue:
        return cls(
            subject=strawberry.ID(str(u.subject_id)),
            category=u.category,
            field=u.field,
            record=u.record,
            value=u.value,
        )


@strawberry.type(description="This agent looked at the most people allowed in an hour.")
class SupportLimitReached:
    message: str = strawberry.field(description="What happened, in plain words.")
    retry_after: int = strawberry.field(description="Seconds until another person may be seen.")


@strawberry.type(description="The ticket or reason is missing or malformed: nothing was looked at.")
class InvalidSupportAccess:
    message: str = strawberry.field(description="What is wrong with it.")


@strawberry.type(description="This value cannot be unmasked as asked.")
class UnmaskRefused:
    message: str = strawberry.field(description="Why, in plain words.")


@strawberry.type(
    description="An export opened for a person by an agent. It goes to the person, who "
    "downloads it with their own login; the agent gets no link."
)
class OpenedExport:
    id: strawberry.ID = strawberry.field(description="Export id.")
    status: ExportStatus = strawberry.field(description="Where the export stands.")
    format: ExportFormat = strawberry.field(description="Format of the data files.")
    purpose: ExportPurpose = strawberry.field(description="Access or portability.")
    categories: list[str] = strawberry.field(description="Category keys asked for.")
    created_at: datetime = strawberry.field(description="When it was asked for.")
    expires_at: datetime = strawberry.field(description="When the person's link stops working.")

    @classmethod
    def of(cls, row: ExportRow) -> OpenedExport:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=ExportStatus(row.current_status),
            format=ExportFormat(row.format),
            purpose=ExportPurpose(row.purpose),
            categories=list(row.categories),
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


UnmaskResult = Annotated[
    UnmaskedValue
    | StrongerLoginRequired
    | SupportLimitReached
    | InvalidSupportAccess
    | UnmaskRefused,
    strawberry.union("UnmaskResult", description="The value, or why it is not shown."),
]
RequestExportForResult = Annotated[
    OpenedExport | InvalidSupportAccess | ExportLimitReached | InvalidExportRequest,
    strawberry.union("RequestExportForResult", description="The export, or why there is none."),
]


@strawberry.enum(description="Who other than the person looked.")
class AccessorKind(enum.Enum):
    PARTNER = "partner"
    SUPPORT = "support"


@strawberry.type(
    description="One look at the person's data by a partner or a support agent (never the "
    "agent's identity: the ticket says why)."
)
class AccessLogEntry:
    at: datetime = strawberry.field(description="When.")
    by: AccessorKind = strawberry.field(description="A partner or a support agent.")
    partner: str | None = strawberry.field(description="The partner's client id.")
    ticket: str | None = strawberry.field(description="The support ticket it was for.")
    action: str = strawberry.field(
        description="What was done: subject.find, subject.read, field.unmask, export.request, "
        "transfer.start, transfer.download, transfer.sent, access.denied…"
    )
    outcome: str = strawberry.field(description="allowed, denied or failed.")
    categories: list[str] = strawberry.field(
        description="Category keys (or category.field) concerned; never values."
    )
    refusal: str | None = strawberry.field(
        default=None,
        description="Why it was refused (a download: not_yours, step_up, busy, gone).",
    )
    ending: str | None = strawberry.field(
        default=None,
        description="How a download ended (transfer.sent, export.sent): complete, interrupted "
        "or store_failed. Complete means the whole bundle was sent; whether it arrived no "
        "server can know.",
    )
    sent_bytes: ByteCount | None = strawberry.field(
        default=None, description="How many bytes of the bundle a download sent."
    )

    @classmethod
    def of(cls, e: AccessEntry) -> AccessLogEntry:
        return cls(
            at=e.at,
            by=AccessorKind(e.actor_kind),
            partner=e.client_id if e.actor_kind == "partner" else None,
            ticket=e.ticket if e.actor_kind == "support" else None,
            action=e.action,
            outcome=e.outcome,
            categories=list(e.categories),
            refusal=e.refusal,
            ending=e.ending,
            sent_bytes=None if e.sent_bytes is None else ByteCount(e.sent_bytes),
        )
