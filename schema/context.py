"""The typed context of one GraphQL request: who calls, and fresh loaders for this request only."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.principals import Principal
from api.services import Services
from schema.loaders import Loaders


@dataclass(slots=True)
class Context:
    services: Services
    principal: Principal | None
    request_id: str = "-"
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services.stores)
