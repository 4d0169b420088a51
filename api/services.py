"""What one running app holds: settings, catalogue, stores and the service database."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from api.leases import Leases
from api.settings import Settings
from catalogue import Catalogue
from stores.registry import Stores


@dataclass(slots=True)
class Services:
    settings: Settings
    catalogue: Catalogue
    stores: Stores
    db: asyncpg.Pool
    leases: Leases

    async def ready(self) -> dict[str, bool]:
        checks = await self.stores.ping()
        try:
            async with self.db.acquire(timeout=2) as conn:
                checks["service"] = bool(await conn.fetchval("SELECT true", timeout=2))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            checks["service"] = False
        return checks
