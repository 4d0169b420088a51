"""`GET /exports/{id}`: the HTTP side of a download. The rules (who may have it, step-up, the
audit row, the lease, how it ends) are `domain.downloads`; this parses, answers a refusal
through `api.challenges.refusal`, and streams."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from api.authn import uses_dpop
from api.challenges import error_response, refusal
from api.graphql_http import AUTH_ERRORS, json_response
from domain import downloads
from domain.errors import DomainError, NotFound
from domain.principals import Principal
from domain.services import Services


async def export_download(request: Request) -> Response:
    if request.method != "GET":
        # HEAD would build and stream the whole bundle only for the server to drop it.
        return json_response({"error": "method_not_allowed"}, 405, {"Allow": "GET"})
    services: Services = request.app.state.services
    try:
        principal = await request.app.state.security.principal(request, services)
    except AUTH_ERRORS as exc:
        return error_response(exc)
    try:
        export_id = UUID(request.path_params["id"])
    except ValueError:
        return refusal(NotFound())
    dpop = uses_dpop(request.headers.get("authorization"))
    return await download(services, principal, export_id, request.state.request_id, dpop=dpop)


async def download(
    services: Services,
    principal: Principal,
    export_id: UUID,
    request_id: str = "-",
    *,
    dpop: bool = False,
) -> Response:
    """The streamed ZIP, or 401 (step-up), 404, 409, 410 or 503.

    The audit row is written before a byte leaves; if it cannot be, nothing leaves."""
    try:
        started = await downloads.start(services, principal, export_id, request_id)
    except DomainError as exc:
        return refusal(exc, dpop=dpop)
    return ExportResponse(
        started,
        media_type=started.media_type,
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{started.filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


class ExportResponse(StreamingResponse):
    """Ends its download whatever happens to the response: a client that goes away before the
    first byte, or while a chunk is being sent, leaves the stream unstarted or suspended, and
    the export must still be failed and its lease released."""

    def __init__(self, download: downloads.Download, **kwargs: Any) -> None:
        super().__init__(download.chunks(), **kwargs)
        self.download = download

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.download.close()
