"""All backing stores of one deployment, opened together and looked up by category."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from catalogue import Catalogue
from stores.config import StoresConfig, StoresError
from stores.media import MediaStore
from stores.pool import create_pool
from stores.postgres import PostgresStore

Store = PostgresStore | MediaStore


@dataclass(slots=True)
class Stores:
    by_name: dict[str, Store]
    by_category: dict[str, Store]
    # Identity links and e-mail look-up live with the profile (the accounts system).
    accounts: PostgresStore

    @classmethod
    async def open(cls, config: StoresConfig, catalogue: Catalogue) -> Stores:
        config.check_covers(catalogue.keys)
        by_name: dict[str, Store] = {}
        try:
            for sc in config.stores:
                if sc.kind == "media":
                    assert sc.path is not None
                    by_name[sc.name] = MediaStore(sc.name, sc.path, sc.categories)
                    continue
                try:
                    pool = await create_pool(sc.dsn)
                except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                    raise StoresError(
                        f"{config.source}: store '{sc.name}' does not answer ({type(exc).__name__})"
                    ) from None
                cats = {k: catalogue.category(k) for k in sc.categories}
                by_name[sc.name] = PostgresStore(sc.name, pool, cats)
        except BaseException:
            await _close(by_name.values())
            raise
        by_category = {c: by_name[sc.name] for sc in config.stores for c in sc.categories}
        accounts = by_category["profile"]
        if not isinstance(accounts, PostgresStore):
            raise StoresError(f"{config.source}: 'profile' must live in a PostgreSQL store")
        return cls(by_name, by_category, accounts)

    async def close(self) -> None:
        await _close(self.by_name.values())

    async def ping(self) -> dict[str, bool]:
        results = await asyncio.gather(*(s.ping() for s in self.by_name.values()))
        return dict(zip(self.by_name, results, strict=True))

    def postgres(self, category: str) -> PostgresStore:
        store = self.by_category[category]
        assert isinstance(store, PostgresStore)
        return store

    def media(self, category: str) -> MediaStore:
        store = self.by_category[category]
        assert isinstance(store, MediaStore)
        return store

    async def counts(self, subject_ids: Sequence[UUID]) -> dict[UUID, dict[str, int]]:
        """Records per category per subject: one statement per store, run concurrently."""
        parts = await asyncio.gather(*(s.counts(subject_ids) for s in self.by_name.values()))
        out: dict[UUID, dict[str, int]] = {sid: {} for sid in subject_ids}
        for part in parts:
            for sid, counts in part.items():
                out[sid].update(counts)
        return out

    async def subject_for_login(self, issuer: str, sub: str) -> UUID | None:
        row = await self.accounts.pool.fetchval(
            "SELECT subject_id FROM identity_links WHERE issuer = $1 AND sub = $2", issuer, sub
        )
        return row if isinstance(row, UUID) else None

    async def subjects_by_email(self, email: str, limit: int = 5) -> list[UUID]:
        rows = await self.accounts.pool.fetch(
            "SELECT subject_id FROM profile WHERE lower(email) = lower($1) "
            "ORDER BY subject_id LIMIT $2",
            email.strip(),
            limit,
        )
        return [r["subject_id"] for r in rows]

    async def subject_exists(self, subject_id: UUID) -> bool:
        return bool(
            await self.accounts.pool.fetchval("SELECT true FROM subjects WHERE id = $1", subject_id)
        )

    async def subject_by_handle(self, handle: str) -> UUID | None:
        row = await self.accounts.pool.fetchval("SELECT id FROM subjects WHERE handle = $1", handle)
        return row if isinstance(row, UUID) else None


async def _close(stores: Iterable[Store]) -> None:
    for store in list(stores):
        if isinstance(store, PostgresStore):
            await store.pool.close()
