"""All stores of one deployment, opened together; a person's keys resolved across them.

A subject is one anchor value. `person()` finds every other key from it, once, in the order
the stores file allows (each by one bounded statement, whatever the number of values), and
every category is then read by the key its own system uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from uuid import UUID

import asyncpg

from catalogue import Catalogue
from stores.config import KeyConfig, SearchConfig, StoreConfig, StoresConfig, StoresError
from stores.files import FilesStore, Listing
from stores.interface import Snapshot, TableStore
from stores.mapping import Fields, JsonPage, Person, Position, Row, Written
from stores.pool import SNAPSHOTS, create_pool
from stores.postgres import PostgresStore
from stores.streams import snapshot as postgres_snapshot
from stores.subjects import LoginWatch, Subjects

T = TypeVar("T")
G = TypeVar("G", bound=Hashable)
R = TypeVar("R")

Store = TableStore | FilesStore

_OPEN_ERRORS = (OSError, asyncpg.PostgresError, TimeoutError, ConnectionError)


class _Opened(Protocol):
    async def close(self) -> None: ...


@dataclass(slots=True)
class Stores:
    config: StoresConfig
    by_name: dict[str, Store]
    subjects: Subjects

    @classmethod
    async def open(
        cls,
        config: StoresConfig,
        catalogue: Catalogue,
        service_dsn: str,
        *,
        snapshots: int = SNAPSHOTS,
        watch_logins: bool = False,
    ) -> Stores:
        """Opens every store and checks every section against the live systems. `snapshots`:
        connections each PostgreSQL store keeps for exports, apart from its queries' pool.
        `watch_logins`: logins' subjects are served from memory while a connection of their
        own listens for changes to them (`LoginWatch`: a server's requests)."""
        config.check_covers(catalogue)
        by_name: dict[str, Store] = {}
        pool = None
        try:
            for sc in config.stores:
                by_name[sc.name] = await _open(sc, config, catalogue, snapshots)
            pool = await create_pool(service_dsn)
        except BaseException:
            await _close(by_name.values())
            raise
        watch = None
        if watch_logins:
            watch = LoginWatch(service_dsn, pool)
            watch.start()
        return cls(config, by_name, Subjects(pool, watch))

    async def close(self) -> None:
        if self.subjects.watch is not None:
            await self.subjects.watch.close()
        await _close(self.by_name.values())
        await self.subjects.pool.close()

    async def ping(self) -> dict[str, bool]:
        results = await asyncio.gather(*(s.ping() for s in self.by_name.values()))
        return dict(zip(self.by_name, results, strict=True))

    def store_of(self, category: str) -> Store:
        return self.by_name[self.config.categories[category].store]

    def table(self, category: str) -> TableStore:
        store = self.store_of(category)
        assert not isinstance(store, FilesStore)
        return store

    def postgres(self, category: str) -> PostgresStore:
        store = self.store_of(category)
        assert isinstance(store, PostgresStore)
        return store

    def files(self, category: str) -> FilesStore:
        store = self.store_of(category)
        assert isinstance(store, FilesStore)
        return store

    def _key_store(self, key: KeyConfig | SearchConfig) -> TableStore:
        store = self.by_name[key.store]
        assert not isinstance(store, FilesStore)
        return store

    @property
    def statements(self) -> int:
        return sum(s.statements for s in self.by_name.values())

    # A person across systems.

    async def person(self, anchor: str, *, all_keys: bool = True) -> Person | None:
        """The person whose anchor value this is (None if the company holds none), with every
        key found, or (`all_keys=False`) with keys left to be found when a read needs them."""
        first = self.config.anchor
        stored = await self._key_store(first).anchor_value(first, anchor)
        if stored is None:
            return None
        person = Person(stored, {first.name: (stored,)})
        if all_keys:
            await self.ensure(person, [k.name for k in self.config.keys])
        return person

    async def person_of(
        self, subject_id: UUID, *, all_keys: bool = True, anchor: str | None = None
    ) -> Person | None:
        """`anchor`: the subject's anchor value where it was read already in this request
        (`login`), else it is read here."""
        if anchor is None:
            anchor = await self.subjects.anchor_of(subject_id)
        return None if anchor is None else await self.person(anchor, all_keys=all_keys)

    async def ensure(self, person: Person, wanted: Iterable[str]) -> None:
        """Finds the keys `wanted` and those they are found from, each once, in order."""
        needed = set(wanted)
        for key in reversed(self.config.keys):
            if key.name in needed:
                needed |= {used for _, used in key.match}
        if needed <= person.values.keys():
            return  # nothing to find: no wait on reads finding other keys
        while True:
            for name in needed & person.pending.keys():
                # Being found by a page's statement: wait for that (not for its lock), and
                # not cancel it if this read is cancelled. Found already, while this read
                # waited for another: gone from `pending`.
                if (finding := person.pending.get(name)) is not None:
                    await asyncio.wait([finding])
            async with person.lock:
                # A page said it is finding one of them while this read waited for the lock
                # (it says so under the lock only): wait for it rather than find it twice.
                if not needed & person.pending.keys():
                    await self._find(person, needed)
                    return

    async def _find(self, person: Person, needed: set[str]) -> None:
        """The keys `needed` that are not known yet, in order (under the person's lock)."""
        for key in self.config.keys[1:]:
            if key.name not in needed or key.name in person.values:
                continue
            if not person.has_all(tuple(k for _, k in key.match)):
                person.values[key.name] = ()
                continue
            # Keys read from the same rows come along in the same statement, needed now or
            # not: another category of this request will likely want them.
            together = [key] + [
                k
                for k in self.config.keys[1:]
                if k is not key
                and k.name not in person.values
                and k.name not in person.pending  # a page's statement is finding it
                and (k.store, k.table, k.match) == (key.store, key.table, key.match)
            ]
            _keep(person, together, await self._key_store(key).resolve_all(together, person))

    def _keys_of(self, category: str) -> list[str]:
        mapped = self.config.categories[category]
        return [k for _, k in mapped.match] or list(mapped.pattern_keys)

    # Reads, as GraphQL, the account page and the right-to-know statement use them.

    async def single(
        self, category: str, person: Person, fields: Fields | None = None
    ) -> Row | None:
        """The person's record of a category (the first in order); `fields`: only these."""
        await self.ensure(person, self._keys_of(category))
        return await self.table(category).single(category, person, fields)

    async def singles(
        self, asked: Sequence[tuple[str, Fields | None]], person: Person
    ) -> list[Row | None]:
        """`single` of each (category, fields): those of one PostgreSQL store in one statement
        (`PostgresStore.singles`)."""
        await self.ensure(person, [k for category, _ in asked for k in self._keys_of(category)])

        async def read(name: str, mine: list[tuple[str, Fields | None]]) -> list[Row | None]:
            store = self.by_name[name]
            if isinstance(store, PostgresStore) and len(mine) > 1:
                return await store.singles(mine, person)
            return [await self.table(c).single(c, person, f) for c, f in mine]

        return await in_groups(asked, self._store_name, read, None, together=True)

    async def page(
        self,
        category: str,
        person: Person,
        limit: int,
        after: Position | None,
        fields: Fields | None = None,
    ) -> list[Row]:
        await self.ensure(person, self._keys_of(category))
        return await self.table(category).page(category, person, limit, after, fields)

    def writes_json(self, category: str) -> bool:
        """Whether `page_json` reads this category (its store writes JSON: PostgreSQL)."""
        return isinstance(self.store_of(category), PostgresStore)

    async def page_json(self, category: str, person: Person, asked: JsonPage) -> Written:
        """A page as `PostgresStore.page_json` writes it (where `writes_json`). A key the
        category needs that its own store holds is found in the same statement."""
        return (await self._pages_together([(category, asked)], person))[0]

    async def pages_json(
        self, asked: Sequence[tuple[str, JsonPage]], person: Person
    ) -> list[Written]:
        """`page_json` of each (category, page): those of one PostgreSQL store in one statement
        (`PostgresStore.pages_json`), which also finds their first key where each of them
        would find that same key in its own (`_found_with`)."""

        async def read(_: str, mine: list[tuple[str, JsonPage]]) -> list[Written]:
            return await self._pages_together(mine, person)

        return await in_groups(
            asked, self._store_name, read, Written("", [], [], False), together=True
        )

    def _store_name(self, asked: tuple[str, Any]) -> str:
        """The store of a read of (category, …)."""
        return self.config.categories[asked[0]].store

    async def _pages_together(
        self, asked: Sequence[tuple[str, JsonPage]], person: Person
    ) -> list[Written]:
        """Pages of one store: one alone as `PostgresStore.page_json` writes it, several in one
        statement (`PostgresStore.pages_json`)."""
        categories = [c for c, _ in asked]
        store = self.postgres(categories[0])

        async def read(resolve: Sequence[KeyConfig]) -> tuple[list[Written], Found]:
            if len(asked) > 1:
                return await store.pages_json(asked, person, resolve)
            written, found = await store.page_json(categories[0], person, asked[0][1], resolve)
            return [written], found

        async with person.lock:
            resolve = self._found_with(categories[0], person)
            if any(self._found_with(c, person) != resolve for c in categories[1:]):
                resolve = []  # not the same key missing for every one: found first, apart
            if resolve:
                # Found by this statement, not under the lock: reads of other keys go on.
                done = asyncio.get_running_loop().create_future()
                person.pending[resolve[0].name] = done
        if not resolve:
            await self.ensure(person, [k for c in categories for k in self._keys_of(c)])
            return (await read(()))[0]
        try:
            written, found = await read(resolve)
            _keep(person, resolve, found)
        finally:
            del person.pending[resolve[0].name]
            done.set_result(None)
        return written

    def _found_with(self, category: str, person: Person) -> list[KeyConfig]:
        """The keys a page of `category` can find in its own statement: the one its first
        `match` column takes, when that is all it lacks, the key is in the category's store
        and every key it is found from is known already."""
        mapped = self.config.categories[category]
        missing = [k for k in self._keys_of(category) if k not in person.values]
        if any(k in person.pending for k in missing):
            return []
        if [k for _, k in mapped.match[:1]] != missing:
            return []
        [key] = [k for k in self.config.keys if k.name == missing[0]]
        store = self.postgres(category)
        if key.store != mapped.store or not store.resolves_here(category):
            return []
        return [key] if person.has_all(tuple(k for _, k in key.match)) else []

    async def listing(self, category: str, person: Person) -> Listing:
        await self.ensure(person, self._keys_of(category))
        return await self.files(category).listing(category, person)

    async def person_counts(self, person: Person) -> dict[str, int]:
        """Records per category: one statement per store, run concurrently (a store that
        fails stops the others' statements, `_all_or_none`)."""
        await self.ensure(person, [k.name for k in self.config.keys])
        parts = await _all_or_none([s.counts(person) for s in self.by_name.values()])
        out: dict[str, int] = {}
        for part in parts:
            out.update(part)
        return out

    async def counts(self, subject_ids: Sequence[UUID]) -> dict[UUID, dict[str, int]]:
        out = {}
        for sid in subject_ids:
            person = await self.person_of(sid)
            out[sid] = {} if person is None else await self.person_counts(person)
        return out

    async def value(
        self, category: str, field: str, subject_id: UUID, record: str | None
    ) -> str | None:
        """One stored value of one field (support's unmasking, after its audit row)."""
        person = await self.person_of(subject_id, all_keys=False)
        if person is None or self.store_of(category).kind == "files":
            return None
        await self.ensure(person, self._keys_of(category))
        return await self.table(category).value(category, field, person, record)

    async def recording(self, category: str, subject_id: UUID, name: str) -> Row | None:
        """One of the person's files, by name (`_path` says where it is in its store)."""
        person = await self.person_of(subject_id, all_keys=False)
        if person is None:
            return None
        await self.ensure(person, self._keys_of(category))
        return await self.files(category).open_file(category, person, name)

    # Subjects: dsar's own ids for anchor values, in the service database.

    async def subject_for_login(self, issuer: str, sub: str) -> UUID | None:
        return await self.subjects.for_login(issuer, sub)

    async def login(self, issuer: str, sub: str) -> tuple[UUID | None, str | None]:
        """The login's subject and that subject's anchor value (as `person()` takes it)."""
        return await self.subjects.login(issuer, sub)

    async def subject_by_handle(self, handle: str) -> UUID | None:
        return await self.subjects.by_handle(handle)

    async def subject_exists(self, subject_id: UUID) -> bool:
        anchor = await self.subjects.anchor_of(subject_id)
        first = self.config.anchor
        return (
            anchor is not None
            and await self._key_store(first).anchor_value(first, anchor) is not None
        )

    async def subject_for_anchor(self, anchor: str) -> UUID | None:
        """dsar's subject for an anchor value the company's systems hold; None if they don't.
        The value is taken as the system stores it (`01001` is user 1001), so one person is
        always one subject."""
        first = self.config.anchor
        stored = await self._key_store(first).anchor_value(first, anchor)
        if stored is None:
            return None
        return (await self.subjects.ids_for([stored]))[0]

    async def subjects_by_email(self, email: str, limit: int = 5) -> list[UUID]:
        """Support's look-up: exact, trimmed, case-insensitive, through `[search.email]`."""
        search = self.config.search
        if search is None or not email.isprintable():
            return []
        anchors = await self._key_store(search).search(search, email, limit)
        return await self.subjects.ids_for(anchors)


async def in_groups(
    items: Sequence[T],
    group: Callable[[T], G],
    read: Callable[[G, list[T]], Awaitable[Sequence[R] | None]],
    empty: R,
    *,
    together: bool = False,
) -> list[R]:
    """`read` of each group of `items` (by `group`, in the order first seen), one result an
    item, each put back in its item's place; a group `read` gives None for stays `empty`.

    `together`: the groups are read at once (groups of different stores: each waits on its
    own database), else one after another. Either way the first failure is raised as itself,
    and no group's read is left running after it."""
    places: dict[G, list[int]] = {}
    for i, item in enumerate(items):
        places.setdefault(group(item), []).append(i)
    groups = [(g, [items[i] for i in where]) for g, where in places.items()]
    if together and len(groups) > 1:
        found = await _all_or_none([read(g, mine) for g, mine in groups])
    else:
        found = [await read(g, mine) for g, mine in groups]
    out = [empty] * len(items)
    for where, results in zip(places.values(), found, strict=True):
        if results is None:
            continue
        for i, result in zip(where, results, strict=True):
            out[i] = result
    return out


async def _all_or_none(reads: Sequence[Awaitable[R]]) -> list[R]:
    """Every read's result, run at once; at the first failure the others are cancelled and
    awaited before it is raised (a store's statement is not left running for nobody)."""
    tasks = [asyncio.ensure_future(r) for r in reads]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# Each key's values found, and how many were left out as shared (`PostgresStore.resolve_all`).
Found = list[tuple[list[str], int]]


def _keep(person: Person, keys: Sequence[KeyConfig], found: Found) -> None:
    """Each key's values found, and how many were left out (shared with other people)."""
    for k, (values, left_out) in zip(keys, found, strict=True):
        person.values[k.name] = tuple(values)
        if left_out:
            person.shared[k.name] = left_out


async def _open(
    sc: StoreConfig, config: StoresConfig, catalogue: Catalogue, snapshots: int
) -> Store:
    if sc.kind == "files":
        assert sc.path is not None
        return FilesStore(sc.name, sc.path, config)
    try:
        if sc.kind == "mysql":
            from stores.mysql import MySQLStore  # imported only where a MySQL store is used

            mysql: TableStore = await MySQLStore.open(sc.name, sc.dsn, config, catalogue)
            return mysql
        return await PostgresStore.open(sc.name, sc.dsn, config, catalogue, snapshots)
    except StoresError:
        raise
    except _OPEN_ERRORS as exc:
        raise StoresError(
            f"{config.source}: store '{sc.name}' does not answer ({type(exc).__name__})"
        ) from None


async def _close(stores: Iterable[_Opened]) -> None:
    for store in list(stores):
        await store.close()


__all__ = ["Person", "Position", "Row", "Store", "Stores", "TableStore", "snapshot"]


def snapshot(store: TableStore) -> AbstractAsyncContextManager[Snapshot]:
    """One consistent, read-only view of a table store, for an export."""
    if isinstance(store, PostgresStore):
        pg: AbstractAsyncContextManager[Snapshot] = postgres_snapshot(store)
        return pg
    from stores.mysql import MySQLStore  # only where a MySQL store is used
    from stores.mysql_streams import snapshot as mysql_snapshot

    assert isinstance(store, MySQLStore)

    result: AbstractAsyncContextManager[Snapshot] = mysql_snapshot(store)
    return result
