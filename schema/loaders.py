"""Per-request DataLoaders, one per kind of read: a request makes a bounded number of statements
whatever its shape: one per key to find the person (once), then one per store for the
categories of a single record (`Stores.singles`) and one per store for the pages the database
writes as JSON (`Stores.pages_json`), one per other page or list asked for, one per store for
counts; never one per record or per key value.

A plan (schema/planner.py) knows all its reads at once: it hands each kind's keys to the same
batch functions (`singles`, `pages`, `file_lists`) without the DataLoaders' futures and tasks,
so its reads are grouped and sent exactly as the executor's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any
from uuid import UUID

from strawberry.dataloader import DataLoader

from stores.mapping import Fields, JsonPage, Person, Position, Written
from stores.registry import Stores, in_groups

Row = dict[str, Any]
# Category, subject, (page size, position,) and the fields to read (None: every field).
SingleKey = tuple[str, UUID, Fields | None]
PageKey = tuple[str, UUID, int, Position | None, Fields | None]
JsonPageKey = tuple[str, UUID, JsonPage]  # a page written as JSON (`Stores.page_json`)

# Each batch function's DataLoader (its attribute of `Loaders`), by the batch function's name.
_LOADERS = {"singles": "single", "pages": "page", "file_lists": "files"}


class Loaders:
    def __init__(self, stores: Stores, anchors: Mapping[UUID, str] | None = None) -> None:
        """`anchors`: subjects' anchor values this request read already (the caller's own,
        with its login)."""
        self.stores = stores
        self.anchors = anchors or {}
        self.person: DataLoader[UUID, Person | None] = DataLoader(self._person)

    # The others are made when a field first loads through them (most requests use one or two).

    @cached_property
    def single(self) -> DataLoader[SingleKey, Row | None]:
        return DataLoader(self.singles)

    @cached_property
    def page(self) -> DataLoader[PageKey, list[Row]]:
        return DataLoader(self.pages)

    @cached_property
    def files(self) -> DataLoader[tuple[str, UUID], list[Row]]:
        return DataLoader(self.file_lists)

    @cached_property
    def counts(self) -> DataLoader[UUID, dict[str, int]]:
        return DataLoader(self._counts)

    def loader_of(self, kind: str) -> DataLoader[Any, Any]:
        """The DataLoader of a batch function, by the batch function's name."""
        loader: DataLoader[Any, Any] = getattr(self, _LOADERS[kind])
        return loader

    async def _person(self, keys: Sequence[UUID]) -> list[Person | None]:
        # Keys are found as the categories asked for need them: a profile query never waits
        # on the analytics system.
        return [
            await self.stores.person_of(sid, all_keys=False, anchor=self.anchors.get(sid))
            for sid in keys
        ]

    async def singles(self, keys: Sequence[SingleKey]) -> list[Row | None]:
        """A subject's records of one store in one statement (`Stores.singles`)."""

        async def read(sid: UUID, mine: list[SingleKey]) -> list[Row | None] | None:
            person = await self.person.load(sid)
            if person is None:
                return None
            return await self.stores.singles([(c, fields) for c, _, fields in mine], person)

        return await in_groups(keys, _subject, read, None)

    async def pages(self, keys: Sequence[PageKey]) -> list[list[Row]]:
        out = []
        for cat, sid, limit, after, fields in keys:
            person = await self.person.load(sid)
            rows = (
                [] if person is None else await self.stores.page(cat, person, limit, after, fields)
            )
            out.append(rows)
        return out

    async def json_pages(self, keys: Sequence[JsonPageKey]) -> list[Written]:
        """Pages the database writes as JSON, a subject's pages of one store in one statement
        (`Stores.pages_json`)."""

        async def read(sid: UUID, mine: list[JsonPageKey]) -> list[Written] | None:
            person = await self.person.load(sid)
            if person is None:
                return None
            return await self.stores.pages_json([(c, page) for c, _, page in mine], person)

        return await in_groups(keys, _subject, read, Written("", [], [], False))

    async def file_lists(self, keys: Sequence[tuple[str, UUID]]) -> list[list[Row]]:
        out: list[list[Row]] = []
        for cat, sid in keys:
            person = await self.person.load(sid)
            if person is None:
                out.append([])
            else:
                out.append((await self.stores.listing(cat, person)).rows)
        return out

    async def _counts(self, keys: Sequence[UUID]) -> list[dict[str, int]]:
        out = []
        for sid in keys:
            person = await self.person.load(sid)
            out.append({} if person is None else await self.stores.person_counts(person))
        return out


def _subject(key: tuple[str, UUID, Any]) -> UUID:
    """The subject of a read's key (category, subject, …)."""
    return key[1]
