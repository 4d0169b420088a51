"""The typed context of one GraphQL request: who calls, and fresh loaders for this request only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from domain.jurisdiction import Settled
from domain.principals import Customer, Principal
from domain.services import Services
from schema.loaders import Loaders


@dataclass(slots=True)
class Context:
    services: Services
    principal: Principal | None
    request_id: str = "-"
    # Where this API is reached from outside ("https://host"), for absolute download links:
    # or how to find it, asked only by the few fields that write a link (`base_url`).
    origin: str | Callable[[], str] = ""
    loaders: Loaders = field(init=False)
    # A resolver may ask for an HTTP status and headers beside its typed result (429 for a
    # limit, with Retry-After); the HTTP layer applies them.
    http_status: int | None = None
    http_headers: dict[str, str] = field(default_factory=dict)
    # A store or the audit log failed under a resolver: the whole answer is a 503.
    unavailable: bool = False
    # The limits of the rules this request hit (their names), for the metrics.
    limits_hit: list[str] = field(default_factory=list)
    # Support looks of this request that found no one, for the alert metric.
    support_misses: int = 0
    # Answered by the planner (schema.planner) rather than the executor, for the metrics.
    planned: bool = False
    # A person's jurisdiction as this request settled it (schema.subject.settled): once per
    # request, however many fields need it.
    settled: dict[UUID, Settled] = field(default_factory=dict)
    settling: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.loaders = fresh_loaders(self.services, self.principal)

    @property
    def base_url(self) -> str:
        return self.origin if isinstance(self.origin, str) else self.origin()


def fresh_loaders(services: Services, principal: Principal | None) -> Loaders:
    """New loaders for one request, knowing the caller's anchor where it came with the login."""
    if isinstance(principal, Customer) and principal.subject_id and principal.anchor:
        return Loaders(services.stores, {principal.subject_id: principal.anchor})
    return Loaders(services.stores)
