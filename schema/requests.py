"""Requests as cases in GraphQL: the person's own `me { requests }`.

Each resolver calls one function of `domain.requests` and maps the result to `Request`.
"""

from __future__ import annotations

from typing import Any

import strawberry

from domain import requests
from schema.context import Context
from schema.request_types import Request


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
