"""What one running app holds: rules, catalogue, stores and the service database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from catalogue import Catalogue
from domain.audit import GroupCommit
from domain.budget import ExportBudget
from domain.leases import Leases
from domain.notices import Composer, LogMailer, Mailer
from domain.rules import Rules
from domain.turns import Turns
from stores.pool import ping
from stores.registry import Stores

# Exports streaming at once per process (each PostgreSQL store keeps twice as many connections
# for them, apart from its queries' pool: stores/pool.py); and how long an export waits for its
# turn before it is refused (503).
EXPORT_TURNS = 6
EXPORT_WAIT = 30.0


@dataclass(slots=True)
class Services:
    rules: Rules
    catalogue: Catalogue
    stores: Stores
    db: asyncpg.Pool
    leases: Leases
    turns: Turns = field(default_factory=lambda: Turns(EXPORT_TURNS, EXPORT_WAIT))
    # What export streams share while they stream: small requests go first (domain/budget.py).
    budget: ExportBudget = field(default_factory=ExportBudget)
    # How the person is told (SMTP or the log), and where they reach this service from outside.
    mailer: Mailer = field(default_factory=LogMailer)
    public_url: str = "http://127.0.0.1:8000"
    # Audit rows that stand alone are group-committed (domain/_groupcommit.py) on connections
    # of `audit_db`: a pool of their own in the app, so callers holding connections of `db`
    # while they wait never starve the batch (`db` when none is given).
    audit_db: asyncpg.Pool | None = None
    audit: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.audit = GroupCommit(self.db if self.audit_db is None else self.audit_db)

    @property
    def composer(self) -> Composer:
        rules = self.rules
        return Composer(
            self.catalogue, self.public_url, rules.requests.review.reason, rules.downloads_per_link
        )

    async def ready(self) -> dict[str, bool]:
        # Side by side: a database that does not answer costs one ping budget, not two.
        checks, service = await asyncio.gather(self.stores.ping(), ping(self.db))
        return {**checks, "service": service}
