"""`GET /recordings/{name}`: a customer downloads one of their own recordings, as stored."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.authn import InsufficientScope, require_scope, uses_dpop
from api.challenges import error_response
from api.graphql_http import AUTH_ERRORS
from domain.principals import SCOPE_CUSTOMER, Customer
from domain.services import Services

NOT_FOUND = {"error": "not_found"}


async def recording(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        principal = await request.app.state.security.principal(request, services)
        require_scope(principal, SCOPE_CUSTOMER)
    except AUTH_ERRORS as exc:
        return error_response(exc, dpop=uses_dpop(request.headers.get("authorization")))
    if not isinstance(principal, Customer):
        dpop = uses_dpop(request.headers.get("authorization"))
        return error_response(InsufficientScope(SCOPE_CUSTOMER), dpop=dpop)
    # Only the caller's own files are listed: a name can only ever reach one of them.
    found = None
    if principal.subject_id is not None:
        found = await services.stores.recording(
            "recordings", principal.subject_id, request.path_params["name"]
        )
    if found is None:
        return JSONResponse(NOT_FOUND, status_code=404, headers={"Cache-Control": "no-store"})
    return StreamingResponse(
        services.stores.files("recordings").read(found["_path"]),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{found["file_name"]}"',
            "Content-Length": str(found["bytes"]),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
