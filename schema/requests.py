"""Requests as cases in GraphQL: the person's own `me { requests }`, and privacy staff's queue
and acts (`requests`, `request`, `extendRequest`, `refuseRequest`, `verifyRequest`,
`approveRequest`).

Each resolver calls one function of `domain.requests` and maps the result to `Request`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry

from domain import casework, intake, requests
from domain.notices import RefusalBasis
from domain.requests import Status
from schema import cursors, outcomes
from schema._parse import uuid_or_none
from schema.context import Context
from schema.errors import InvalidArgument, InvalidCursor
from schema.records import PageInfo
from schema.request_types import (
    Request,
    RequestActionResult,
    RequestConnection,
    RequestEdge,
    SubmitRequestInput,
    SubmitRequestResult,
)
from schema.support_types import IdentityCheck


async def subject_requests(self: Any, info: strawberry.Info, first: int = 20) -> list[Request]:
    # `me { requests }`: the person's own; the masked (agent) view lists none.
    if self.masked:
        return []
    ctx: Context = info.context
    cases = await requests.for_subject(ctx.services.db, self.sid, first)
    return [Request.of(c) for c in cases]


SUBJECT_FIELDS: dict[str, Any] = {
    "requests": strawberry.field(
        resolver=subject_requests,
        description="The person's own access and portability requests, however they came in, "
        "newest first (at most `first`, up to 100), with their dates and timelines.",
    ),
}


def _page(ctx: Context, page: casework.Page) -> RequestConnection:
    secret = ctx.services.rules.secret_key
    edges = [
        RequestEdge(
            node=Request.of(c),
            cursor=cursors.encode(secret, _QUEUE, (c.row.deadline.isoformat(), str(c.row.id))),
        )
        for c in page.cases
    ]
    return RequestConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None
        ),
    )


def _after(ctx: Context, after: str | None) -> tuple[datetime, UUID] | None:
    if after is None:
        return None
    position = cursors.decode(ctx.services.rules.secret_key, _QUEUE, after)
    if len(position) != 2:
        raise InvalidCursor
    at, rid = position
    if at is None or rid is None:
        raise InvalidCursor
    try:
        return datetime.fromisoformat(at), UUID(rid)
    except ValueError:
        raise InvalidCursor from None


async def queue(
    info: strawberry.Info,
    status: Status | None = None,
    overdue: bool | None = None,
    first: int = 20,
    after: str | None = None,
) -> RequestConnection:
    ctx: Context = info.context
    if first < 1:
        raise InvalidArgument("`first` must be at least 1.")
    page = await outcomes.looked(
        ctx,
        casework.queue(
            ctx.services,
            ctx.principal,
            status=status,
            overdue=overdue,
            first=first,
            after=_after(ctx, after),
        ),
    )
    return _page(ctx, page)


async def one(info: strawberry.Info, id: strawberry.ID) -> Request | None:
    ctx: Context = info.context
    req_id = uuid_or_none(id)
    if req_id is None:
        return None
    return await outcomes.case_or_none(ctx, casework.one(ctx.services, ctx.principal, req_id))


async def extend_request(
    info: strawberry.Info, id: strawberry.ID, reason: str
) -> RequestActionResult:
    ctx: Context = info.context
    return await outcomes.case(
        ctx, casework.extend(ctx.services, ctx.principal, _id(id), reason, ctx.request_id)
    )


async def refuse_request(
    info: strawberry.Info, id: strawberry.ID, reason: str, basis: RefusalBasis
) -> RequestActionResult:
    ctx: Context = info.context
    return await outcomes.case(
        ctx, casework.refuse(ctx.services, ctx.principal, _id(id), reason, basis, ctx.request_id)
    )


async def verify_request(
    info: strawberry.Info, id: strawberry.ID, method: IdentityCheck, note: str | None = None
) -> RequestActionResult:
    ctx: Context = info.context
    return await outcomes.case(
        ctx,
        casework.verify(ctx.services, ctx.principal, _id(id), method.value, note, ctx.request_id),
    )


async def approve_request(info: strawberry.Info, id: strawberry.ID) -> RequestActionResult:
    ctx: Context = info.context
    return await outcomes.case(
        ctx, casework.approve(ctx.services, ctx.principal, _id(id), ctx.request_id)
    )


async def submit_request(info: strawberry.Info, input: SubmitRequestInput) -> SubmitRequestResult:
    ctx: Context = info.context
    agent = input.agent
    return await outcomes.submitted(
        ctx,
        intake.submit(
            ctx.services,
            email=input.email,
            kind=input.kind.value,
            jurisdiction=input.jurisdiction,
            agent=None if agent is None else intake.Agent(agent.name, agent.email),
            time_zone=input.time_zone,
            request_id=ctx.request_id,
        ),
    )


def _id(id: strawberry.ID) -> UUID:
    # Not an id: the same answer as a request that does not exist.
    return uuid_or_none(id) or _NOWHERE


_NOWHERE = UUID(int=0)
_QUEUE = "requests"
_STAFF = "Privacy staff only (scope privacy:manage)."
QUERY_FIELDS: dict[str, Any] = {
    "requests": strawberry.field(
        resolver=queue,
        description=f"{_STAFF} The queue: every request by the date it is due, earliest first "
        "(so the overdue first); `status` and `overdue` narrow it; `first` at most 100.",
    ),
    "request": strawberry.field(
        resolver=one, description=f"{_STAFF} One request; null when there is none by that id."
    ),
}
MUTATION_FIELDS: dict[str, Any] = {
    "extend_request": strawberry.mutation(
        resolver=extend_request,
        description=f"{_STAFF} Extends the due date as far as the law allows (GDPR: two more "
        "months; CCPA: 45 more days), once, before the first date passes; `reason` (10 to 500 "
        "characters) is e-mailed to the person.",
    ),
    "refuse_request": strawberry.mutation(
        resolver=refuse_request,
        description=f"{_STAFF} Refuses the request on a basis in law; the person is e-mailed the "
        "reason, the basis and how to complain to a supervisory authority.",
    ),
    "verify_request": strawberry.mutation(
        resolver=verify_request,
        description=f"{_STAFF} Records what you checked to verify the person (never a document "
        "number): a reasonably high degree (CCPA regulations §7062).",
    ),
    "submit_request": strawberry.mutation(
        resolver=submit_request,
        description="Ask for your own data without an account (no token needed). The answer is "
        "the same whether or not the address is known; a link to confirm it is e-mailed there.",
    ),
    "approve_request": strawberry.mutation(
        resolver=approve_request,
        description=f"{_STAFF} Releases what was held for review (GDPR Art. 15(4)).",
    ),
}
