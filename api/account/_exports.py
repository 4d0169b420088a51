"""The account page's one door to exports (domain.exports, api.downloads), called in-process with
the session's principal: the same rules as the API, no HTTP hop, and one place to change if
their signatures do. Also the page's words for an export's state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from starlette.responses import Response

from api import downloads
from api.account.data import size
from api.account.web import when
from domain import exports
from domain.principals import Customer
from domain.services import Services

STATUS_TEXT = {
    "ready": "Ready to download",
    "running": "Downloading now",
    "completed": "Downloaded",
    "failed": "The last download did not finish",
    "expired": "Expired",
}
PURPOSE_TEXT = {"access": "Access", "portability": "Portability"}


@dataclass(frozen=True, slots=True)
class ExportView:
    id: UUID
    format: str
    purpose: str
    status: str
    records: int | None
    bytes: int | None
    sha256: str | None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None  # when the last download ended
    # Judged by the database's clock when the row was read (`ExportRow.downloadable`).
    available: bool
    whole_downloads_left: int

    @classmethod
    def of(cls, row: exports.ExportRow) -> ExportView:
        return cls(
            row.id,
            row.format,
            row.purpose,
            row.current_status,
            row.records,
            row.bytes,
            row.sha256,
            row.created_at,
            row.expires_at,
            row.finished_at,
            row.downloadable,
            max(0, row.downloads_allowed - row.full_sends),
        )

    @property
    def used(self) -> bool:
        """Downloaded in full as many times as its link allows: it serves no more."""
        return self.status == "completed" and not self.available

    @property
    def status_text(self) -> str:
        if self.used:
            return f"Used: downloaded on {self.finished}"
        return STATUS_TEXT.get(self.status, self.status)

    @property
    def finished(self) -> str:
        return when(self.finished_at) if self.finished_at is not None else "an earlier date"

    @property
    def until(self) -> str:
        """Until when it can be downloaded, in words."""
        if self.used:
            return "No longer: it has been used"
        if not self.available:
            return "No longer"
        return self.expires

    @property
    def kind(self) -> str:
        return f"{PURPOSE_TEXT.get(self.purpose, self.purpose)}, {self.format.upper()}"

    @property
    def size(self) -> str | None:
        return None if self.bytes is None else size(self.bytes)

    @property
    def created(self) -> str:
        return when(self.created_at)

    @property
    def expires(self) -> str:
        return when(self.expires_at)

    @property
    def filename(self) -> str:
        return f"personal-data-{self.created_at:%Y%m%d}-{self.format}-{self.id.hex[:8]}.zip"


async def request(
    services: Services, principal: Customer, request_id: str, *, format: str, purpose: str
) -> ExportView:
    """As `requestExport` does it (schema/exports.py), audit row included. Raises the domain's
    `StepUpRequired`, `Refused`, `LimitReached` or `AuditUnavailable`."""
    row = await exports.request_for_self(
        services.db,
        services.catalogue,
        services.rules,
        principal,
        format=format,
        purpose=purpose,
        request_id=request_id,
        stores=services.stores,
    )
    return ExportView.of(row)


async def mine(services: Services, principal: Customer) -> list[ExportView]:
    if principal.subject_id is None:
        return []
    return [ExportView.of(r) for r in await exports.for_subject(services.db, principal.subject_id)]


async def still_serves(services: Services, export_id: UUID) -> bool:
    """Whether a link could still serve a download, whoever's it is; nothing else about it."""
    row = await exports.get(services.db, export_id)
    return row is not None and row.downloadable


async def one(services: Services, principal: Customer, export_id: UUID) -> ExportView | None:
    """The caller's own export; None for one that is someone else's or does not exist."""
    row = await exports.get(services.db, export_id)
    if row is None or not exports.may_download(principal, row):
        return None
    return ExportView.of(row)


async def download(
    services: Services, principal: Customer, export_id: UUID, request_id: str
) -> Response:
    """The streamed ZIP, or the API's own refusal (401 step-up, 404, 409, 410, 503)."""
    return await downloads.download(services, principal, export_id, request_id)


def needs_step_up(response: Response) -> bool:
    return (
        response.status_code == 401
        and "insufficient_user_authentication" in response.headers.get("www-authenticate", "")
    )
