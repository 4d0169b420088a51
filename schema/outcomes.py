"""The one place a domain result becomes part of an answer: the union member of a GraphQL field,
a typed GraphQL error, or the HTTP status hint the edge applies (429 with Retry-After for a
limit, 503 when the audit log cannot be written, 403 for the wrong kind of caller; the download
route takes its 404, 409 and 410 from here too).

A resolver hands its one domain call to the function named after its field, which awaits it
and maps what comes back. An error a field does not name is raised on: an `AuditUnavailable`
there makes the whole answer a 503 (`schema/build.py`), anything else is masked.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from domain.agents import Unmasked
from domain.errors import (
    AuditUnavailable,
    Busy,
    DomainError,
    Forbidden,
    Gone,
    LimitReached,
    NotFound,
    Overloaded,
    Refused,
    StepUpRequired,
)
from domain.exports import ExportRow
from domain.portability import GrantView
from domain.requests import Case
from domain.support import InvalidAccess, InvalidInput
from schema import errors
from schema.context import Context
from schema.export_types import (
    Export,
    ExportLimitReached,
    InvalidExportRequest,
    RequestExportResult,
    StrongerLoginRequired,
)
from schema.portability_types import (
    GrantNotFound,
    GrantRefusedError,
    GrantResult,
    PortabilityGrant,
    RevokeResult,
    TransferLimitReached,
    TransferNotAllowed,
    TransferResult,
)
from schema.request_types import (
    InvalidSubmission,
    Request,
    RequestActionResult,
    RequestRefused,
    SubmitRequestResult,
    SubmittedRequest,
)
from schema.support_types import (
    InvalidSupportAccess,
    OpenedExport,
    RequestExportForResult,
    SupportLimitReached,
    UnmaskedValue,
    UnmaskRefused,
    UnmaskResult,
)

T = TypeVar("T")

AUDIT_RETRY = "5"
UNRECORDED = "The look could not be recorded, so nothing is shown. Try again shortly."
GONE = (
    "This download link can no longer be used: a link serves a few whole downloads, for a "
    "limited time. "
    "Ask for a new export."
)
BUSY = "Another export of this data is downloading right now."
LOOKS_LIMIT = "You have looked at the most people allowed in an hour."


@dataclass(frozen=True, slots=True)
class Hint:
    """The HTTP status, JSON body and headers of a domain error, for whichever edge answers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def hint(exc: DomainError) -> Hint:
    if isinstance(exc, LimitReached):
        return Hint(429, {"error": "limit_reached"}, {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, AuditUnavailable):
        return Hint(503, {"error": "unavailable"}, {"Retry-After": AUDIT_RETRY})
    if isinstance(exc, Overloaded):
        return Hint(503, {"error": "overloaded"}, {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, Busy):
        return Hint(409, {"error": "busy", "message": BUSY}, {"Retry-After": "30"})
    if isinstance(exc, Gone):  # spent and expired alike: nothing says which
        return Hint(410, {"error": "gone", "message": GONE})
    if isinstance(exc, NotFound):  # missing and someone else's alike
        return Hint(404, {"error": "not_found"})
    if isinstance(exc, Forbidden):
        return Hint(403, {"error": "forbidden"})
    if isinstance(exc, StepUpRequired):  # the edge adds its RFC 9470 challenge
        return Hint(401, {"error": "insufficient_user_authentication"})
    if isinstance(exc, Refused):
        return Hint(400, {"error": "refused", "message": exc.message})
    return Hint(400, {"error": "refused"})


def _hinted(ctx: Context, exc: DomainError) -> None:
    if isinstance(exc, LimitReached):
        ctx.limits_hit.append(exc.limit or "unnamed")
    h = hint(exc)
    ctx.http_status = h.status
    ctx.http_headers.update(h.headers)


async def _settle(work: Awaitable[T]) -> T | DomainError:
    try:
        return await work
    except DomainError as exc:
        return exc


def _raised(ctx: Context, exc: DomainError) -> Exception:
    """The typed GraphQL error of a support field (their result types are fixed)."""
    if isinstance(exc, Forbidden):  # a partner token that carries an agent's scope
        _hinted(ctx, exc)
        return errors.Forbidden()
    if isinstance(exc, AuditUnavailable):
        _hinted(ctx, exc)
        return errors.AuditDown(UNRECORDED)
    if isinstance(exc, LimitReached):
        _hinted(ctx, exc)
        return errors.LookLimit(LOOKS_LIMIT, retryAfter=exc.retry_after)
    if isinstance(exc, InvalidAccess):
        return errors.AccessRefused(exc.message)
    if isinstance(exc, InvalidInput):
        return errors.BadArgument(exc.message)
    return exc


def _stronger(exc: StepUpRequired, why: str) -> StrongerLoginRequired:
    # RFC 9470: the login strengths and age that would do.
    return StrongerLoginRequired(
        message=f"Log in again, recently and strongly, to {why}.",
        acr_values=list(exc.acr_values),
        max_age=exc.max_age,
    )


async def request_export(ctx: Context, work: Awaitable[ExportRow]) -> RequestExportResult:
    result = await _settle(work)
    if isinstance(result, StepUpRequired):
        return _stronger(result, "export your data")
    if isinstance(result, LimitReached):
        _hinted(ctx, result)
        return ExportLimitReached(
            message="You have asked for the most exports allowed in 24 hours.",
            retry_after=result.retry_after,
        )
    if isinstance(result, Refused):
        return InvalidExportRequest(message=result.message)
    if isinstance(result, DomainError):
        raise result
    return Export.of(result, ctx.base_url)


async def export(ctx: Context, work: Awaitable[ExportRow]) -> Export | None:
    result = await _settle(work)
    if isinstance(result, NotFound):
        return None
    if isinstance(result, DomainError):
        raise result
    return Export.of(result, ctx.base_url)


async def grant(ctx: Context, work: Awaitable[GrantView]) -> GrantResult:
    result = await _settle(work)
    if isinstance(result, StepUpRequired):
        return _stronger(result, "let a partner receive your data")
    if isinstance(result, Refused):
        return GrantRefusedError(message=result.message)
    if isinstance(result, DomainError):
        raise result
    return PortabilityGrant.of(result)


async def revoke(ctx: Context, work: Awaitable[GrantView]) -> RevokeResult:
    result = await _settle(work)
    if isinstance(result, NotFound):
        return GrantNotFound(message="No such grant of yours.")
    if isinstance(result, DomainError):
        raise result
    return PortabilityGrant.of(result)


async def transfer(ctx: Context, work: Awaitable[ExportRow]) -> TransferResult:
    result = await _settle(work)
    if isinstance(result, NotFound):
        return TransferNotAllowed(message="No live grant to you by that id.")
    if isinstance(result, LimitReached):
        _hinted(ctx, result)
        return TransferLimitReached(
            message="Too many transfers for now.", retry_after=result.retry_after
        )
    if isinstance(result, DomainError):
        raise result
    return Export.of(result, ctx.base_url)


async def looked(ctx: Context, work: Awaitable[T]) -> T:
    """`subject` and `findSubjects`: their result is the Subject itself, so every refusal is a
    typed GraphQL error."""
    result = await _settle(work)
    if isinstance(result, DomainError):
        raise _raised(ctx, result) from None
    return result


async def unmask(ctx: Context, work: Awaitable[Unmasked]) -> UnmaskResult:
    result = await _settle(work)
    if isinstance(result, InvalidAccess):
        return InvalidSupportAccess(message=result.message)
    if isinstance(result, StepUpRequired):
        return _stronger(result, "unmask a value")
    if isinstance(result, LimitReached):
        _hinted(ctx, result)
        return SupportLimitReached(message=LOOKS_LIMIT, retry_after=result.retry_after)
    if isinstance(result, Refused):
        return UnmaskRefused(message=result.message)
    if isinstance(result, DomainError):
        raise _raised(ctx, result) from None
    return UnmaskedValue.of(result)


async def export_for(ctx: Context, work: Awaitable[ExportRow]) -> RequestExportForResult:
    result = await _settle(work)
    if isinstance(result, InvalidAccess):
        return InvalidSupportAccess(message=result.message)
    if isinstance(result, LimitReached):
        _hinted(ctx, result)
        return ExportLimitReached(
            message="This person has had the most exports allowed in 24 hours.",
            retry_after=result.retry_after,
        )
    if isinstance(result, Refused):
        return InvalidExportRequest(message=result.message)
    if isinstance(result, DomainError):
        raise _raised(ctx, result) from None
    return OpenedExport.of(result)


async def case_or_none(ctx: Context, work: Awaitable[Case]) -> Request | None:
    result = await _settle(work)
    if isinstance(result, NotFound):
        return None
    if isinstance(result, DomainError):
        raise _raised(ctx, result) from None
    return Request.of(result)


async def case(ctx: Context, work: Awaitable[Case]) -> RequestActionResult:
    result = await _settle(work)
    if isinstance(result, NotFound):
        return RequestRefused(message="No such request.")
    if isinstance(result, Refused):
        return RequestRefused(message=result.message)
    if isinstance(result, DomainError):
        raise _raised(ctx, result) from None
    return Request.of(result)


SUBMITTED = (
    "Thank you. If the address is right, a message is on its way to it with a link to confirm "
    "the request; it works once, for 24 hours. We will answer by the date that message gives."
)


async def submitted(ctx: Context, work: Awaitable[None]) -> SubmitRequestResult:
    result = await _settle(work)
    if isinstance(result, Refused):
        return InvalidSubmission(message=result.message)
    if isinstance(result, DomainError):
        raise result
    return SubmittedRequest(message=SUBMITTED)
