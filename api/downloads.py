"""`GET /exports/{id}`: the bundle of an export, streamed to its owner and to no one else.

The bundle is built from the stores while it is sent: counted and hashed on the way, so the
export row ends with the size and SHA-256 of exactly the bytes that left. A store that fails
half way ends the response before the ZIP's central directory: the client holds a file no
reader takes for a whole bundle, and the row says `failed` with a reason that holds no data.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from api.authn import StepUpRequired, require_strong_login
from api.challenges import error_response
from api.graphql_http import AUTH_ERRORS, json_response
from domain import audit, exports, partners, portability
from domain.audit import Action, AuditUnavailable
from domain.exports import ExportBusy, ExportRow
from domain.principals import Customer, Partner, Principal
from domain.services import Services
from exporters import EXPORTERS, build_bundle, jwe

log = logging.getLogger("dsar.exports")

INTERRUPTED = "The download stopped before the bundle was complete."
STORE_FAILED = "A data store failed while the bundle was streaming."


GONE = {
    "error": "gone",
    "message": "This download link can no longer be used: a copy is downloaded once, for a "
    "limited time. Ask for a new export.",
}


def not_found() -> Response:
    # The same answer for an export that does not exist and one that is someone else's.
    return json_response({"error": "not_found"}, 404)


async def export_download(request: Request) -> Response:
    if request.method != "GET":
        # HEAD would build and stream the whole bundle only for the server to drop it.
        return json_response({"error": "method_not_allowed"}, 405, {"Allow": "GET"})
    services: Services = request.app.state.services
    try:
        principal = await request.app.state.security.principal(request, services.stores)
    except AUTH_ERRORS as exc:
        return error_response(exc)
    try:
        export_id = UUID(request.path_params["id"])
    except ValueError:
        return not_found()
    return await download(services, principal, export_id, request.state.request_id)


async def download(
    services: Services, principal: Principal, export_id: UUID, request_id: str = "-"
) -> Response:
    """The answer to one download: the streamed ZIP, or 401 (step-up), 404, 409, 410 or 503.

    The audit row is written before a byte leaves; if it cannot be, nothing leaves."""
    db = services.db
    row = await exports.get(db, export_id)
    allowed = row is not None and exports.may_download(principal, row)
    if row is not None and allowed and isinstance(principal, Partner):
        # The grant is read on every request: a revocation holds whatever the token says.
        allowed = (
            row.grant_id is not None
            and await portability.live_grant(db, principal, row.grant_id) is not None
        )
    action = (
        Action.TRANSFER_DOWNLOAD if row is not None and row.grant_id else Action.EXPORT_DOWNLOAD
    )
    if row is None:
        return not_found()

    async def record(outcome: audit.Outcome) -> None:
        assert row is not None
        await audit.record(
            db,
            request_id=request_id,
            actor=principal,
            subject_id=row.subject_id,
            action=action,
            outcome=outcome,
            purpose=_purpose(row),
            categories=row.categories if outcome == "allowed" else (),
        )

    if not allowed:
        with contextlib.suppress(AuditUnavailable):  # the refusal stands either way
            await record("denied")
        return not_found()
    if isinstance(principal, Customer):
        rules = services.rules
        try:
            require_strong_login(principal, rules.step_up_acr_values, rules.step_up_max_age)
        except StepUpRequired as exc:
            return error_response(exc)
    if row.status != "running" and not row.downloadable_at(datetime.now(UTC)):
        # Expired or already downloaded whole: one answer, saying nothing of which.
        return json_response(GONE, 410)
    try:
        await record("allowed")
    except AuditUnavailable:
        return json_response({"error": "unavailable"}, 503, {"Retry-After": "5"})
    key = None
    if isinstance(principal, Partner):
        key = await partners.partner_key(db, principal.client_id)
    try:
        claimed = await exports.claim(services.db, services.leases, row)
    except ExportBusy:
        return json_response(
            {"error": "busy", "message": "Another export of this data is downloading right now."},
            409,
            {"Retry-After": "30"},
        )
    exp = EXPORTERS[claimed.format]
    stamp = claimed.created_at.strftime("%Y%m%d")
    name = f"personal-data-{stamp}-{exp.name}-{claimed.id.hex[:8]}.zip"
    if key is not None:
        name += ".jwe"  # readable only with the partner's private key
    return ExportResponse(
        _Download(services, claimed, key),
        media_type=jwe.MEDIA_TYPE if key is not None else "application/zip",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


class ExportResponse(StreamingResponse):
    """Ends its download whatever happens to the response: a client that goes away before the
    first byte, or while a chunk is being sent, leaves the stream unstarted or suspended, and
    the export must still be failed and its lease released."""

    def __init__(self, download: _Download, **kwargs: Any) -> None:
        super().__init__(download.chunks(), **kwargs)
        self.download = download

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.download.close()


def _purpose(row: ExportRow) -> dict[str, str]:
    purpose = {"export_id": str(row.id)}
    if row.grant_id is not None:
        purpose["grant_id"] = str(row.grant_id)
    return purpose


class _Download:
    """One download of an export: the bundle (encrypted to `encrypt_to` when given), counted
    and hashed as it leaves; the row ends completed or failed, and the lease is released."""

    def __init__(
        self, services: Services, row: ExportRow, encrypt_to: dict[str, Any] | None = None
    ) -> None:
        self.services = services
        self.row = row
        self.encrypt_to = encrypt_to
        self.started = False
        self.ended = False
        self._chunks: AsyncGenerator[bytes, None] | None = None

    def chunks(self) -> AsyncGenerator[bytes, None]:
        self._chunks = self._run()
        return self._chunks

    async def close(self) -> None:
        if self._chunks is not None and self.started:
            await self._chunks.aclose()  # runs `_run`'s own ending, if it has not run yet
        if not self.ended:  # never started: nothing left, and nothing was recorded
            await self._end(None, INTERRUPTED)

    async def _end(self, done: tuple[int, int, str, datetime] | None, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        db = self.services.db
        try:
            if done is not None:
                records, size, sha256, generated_at = done
                await exports.complete(
                    db,
                    self.row.id,
                    records=records,
                    size=size,
                    sha256=sha256,
                    generated_at=generated_at,
                )
            else:
                await exports.fail(db, self.row.id, reason)
        finally:
            await self.services.leases.release(self.row.id)

    async def _run(self) -> AsyncGenerator[bytes, None]:
        self.started = True
        row = self.row
        digest = hashlib.sha256()
        size = 0
        counts: dict[str, int] = {}
        reason = INTERRUPTED
        done = None
        generated_at = datetime.now(UTC)
        chunks: AsyncGenerator[bytes, None] = build_bundle(
            self.services.stores,
            self.services.catalogue,
            row.subject_id,
            format=row.format,
            purpose=row.purpose,
            categories=row.categories,
            export_id=row.id,
            generated_at=generated_at,
            counts=counts,
            since=row.since,
        )
        if self.encrypt_to is not None:
            chunks = jwe.encrypt_stream(chunks, self.encrypt_to, "application/zip")
        try:
            async with aclosing(chunks):
                async for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    yield chunk
            done = (sum(counts.values()), size, digest.hexdigest(), generated_at)
        except Exception as exc:
            reason = STORE_FAILED
            log.error("export failed", extra={"error": type(exc).__name__, "event": str(row.id)})
            raise
        finally:
            # Shielded: a client that went away cancels this generator, and the row must still
            # say what happened to it.
            with anyio.CancelScope(shield=True):
                await self._end(done, reason)
