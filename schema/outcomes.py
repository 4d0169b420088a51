"""The one place a domain error becomes part of a GraphQL answer: the data of a union member,
a typed GraphQL error, or the HTTP status hint the edge applies (429 with Retry-After for a
limit, 503 when the audit log cannot be written, 403 for the wrong kind of caller)."""

from __future__ import annotations

from typing import Any

from domain.errors import LimitReached, StepUpRequired
from schema.errors import AuditDown, Forbidden

AUDIT_RETRY = "5"
UNRECORDED = "The look could not be recorded, so nothing is shown. Try again shortly."


def limited(ctx: Any, exc: LimitReached) -> int:
    """A limit: HTTP 429 with Retry-After; returns the seconds for the union member."""
    ctx.http_status = 429
    ctx.http_headers["Retry-After"] = str(exc.retry_after)
    return exc.retry_after


def audit_down(ctx: Any) -> AuditDown:
    """The audit log took no row: HTTP 503, and the typed error to raise."""
    ctx.http_status = 503
    ctx.http_headers["Retry-After"] = AUDIT_RETRY
    return AuditDown(UNRECORDED)


def forbidden(ctx: Any) -> Forbidden:
    """A caller of the wrong kind (a partner token that carries an agent's scope)."""
    ctx.http_status = 403
    return Forbidden()


def step_up(exc: StepUpRequired, message: str) -> dict[str, Any]:
    """The fields of `StrongerLoginRequired` (RFC 9470)."""
    return {"message": message, "acr_values": list(exc.acr_values), "max_age": exc.max_age}
