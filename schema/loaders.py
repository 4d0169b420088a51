"""Per-request DataLoaders, one per kind of read: a request makes a bounded number of SQL
statements whatever its shape (one per category and page size asked for, one per store for
counts), never one per subject or per record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from strawberry.dataloader import DataLoader

from stores.postgres import Cursor
from stores.registry import Stores

Row = dict[str, Any]
PageKey = tuple[str, UUID, int, Cursor | None]


class Loaders:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.single: DataLoader[tuple[str, UUID], Row | None] = DataLoader(self._single)
        self.page: DataLoader[PageKey, list[Row]] = DataLoader(self._page)
        self.files: DataLoader[UUID, list[Row]] = DataLoader(self._files)
        self.counts: DataLoader[UUID, dict[str, int]] = DataLoader(self._counts)

    async def _single(self, keys: Sequence[tuple[str, UUID]]) -> list[Row | None]:
        by_cat: dict[str, list[UUID]] = defaultdict(list)
        for cat, sid in keys:
            by_cat[cat].append(sid)
        found: dict[tuple[str, UUID], Row] = {}
        for cat, sids in by_cat.items():
            rows = await self.stores.postgres(cat).single(cat, sids)
            found.update({(cat, sid): row for sid, row in rows.items()})
        return [found.get(k) for k in keys]

    async def _page(self, keys: Sequence[PageKey]) -> list[list[Row]]:
        groups: dict[tuple[str, int, Cursor | None], list[UUID]] = defaultdict(list)
        for cat, sid, limit, after in keys:
            groups[(cat, limit, after)].append(sid)
        found: dict[PageKey, list[Row]] = {}
        for (cat, limit, after), sids in groups.items():
            pages = await self.stores.postgres(cat).first_pages(cat, sids, limit, after)
            found.update({(cat, sid, limit, after): rows for sid, rows in pages.items()})
        return [found[k] for k in keys]

    async def _files(self, keys: Sequence[UUID]) -> list[list[Row]]:
        files = await self.stores.media("recordings").files(keys)
        return [files[k] for k in keys]

    async def _counts(self, keys: Sequence[UUID]) -> list[dict[str, int]]:
        counts = await self.stores.counts(keys)
        return [counts[k] for k in keys]
