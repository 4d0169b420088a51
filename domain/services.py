"""What one running app holds: rules, catalogue, stores and the service database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from catalogue import Catalogue
from domain.leases import Leases
from domain.rules import Rules
from stores.pool import ping
from stores.registry import Stores


@dataclass(slots=True)
class Services:
    rules: Rules
    catalogue: Catalogue
    stores: Stores
    db: asyncpg.Pool
    leases: Leases

    async def ready(self) -> dict[str, bool]:
        # Side by side: a database that does not answer costs one ping budget, not two.
        checks, service = await asyncio.gather(self.stores.ping(), ping(self.db))
        return {**checks, "service": service}
