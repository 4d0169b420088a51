"""The baselines: bare asyncpg `copy_from_query` of the same mapped SELECT, into a sink that
drops the bytes.

The SQL is the export's own: `MappedCategory.records_sql` (the category's mapped columns, cast
and aliased, from the company's table, on rows of the person's key values, in its `order`: one
index walk per key value, merged), wrapped by `csv_query` (CSV cells) or `json_query`
(`row_to_json`), with the person's key values as parameters. It runs in the benchmark's own
process, with the session settings and COPY options the bundle's snapshot uses (UTC, ISO dates,
its price of random reads, no 30 s statement timeout, one read-only REPEATABLE READ
transaction), so the only difference left is what dsar does on top: resolving the person, the
ZIP, HTTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from catalogue import Catalogue
from stores.files import FilesStore
from stores.mapping import Person
from stores.postgres import PostgresStore
from stores.registry import Stores
from stores.streams import SNAPSHOT_SETTINGS, csv_options, csv_query, json_query

# The bundle's own snapshot settings (stores/streams.py), with no statement timeout.
_SESSION = f"SET LOCAL statement_timeout = 0; {SNAPSHOT_SETTINGS}"
# The COPY options of the plain SELECT as CSV, and of `Snapshot.json_lines`.
_CSV = {"format": "csv", "header": True, "encoding": "UTF8"}
_JSON = {"format": "csv", "quote": "\x01", "delimiter": "\x02", "encoding": "UTF8"}
KINDS = ("csv", "json", "plain")


class Sink:
    """Counts the bytes and drops them."""

    def __init__(self) -> None:
        self.bytes = 0

    async def __call__(self, data: bytes) -> None:
        self.bytes += len(data)


@dataclass(frozen=True, slots=True)
class Copied:
    seconds: float
    bytes: int


@dataclass(frozen=True, slots=True)
class Query:
    """One COPY: its SQL, the person's key values as parameters, and the COPY options."""

    category: str
    sql: str
    args: tuple[Any, ...]
    options: dict[str, Any]


def query(stores: Stores, category: str, person: Person, kind: str) -> Query:
    """The person's records of `category` as the export reads them: `csv` (the bundle's CSV
    cells, with the snapshot's COPY options: text cells force-quoted), `json` (one
    `row_to_json` object a line) or `plain` (the mapped SELECT itself as CSV, PostgreSQL's
    default quoting: the least a CSV of these records can cost)."""
    cat = stores.postgres(category).categories[category]
    args: list[Any] = []
    records = cat.records_sql(person, args)
    if not person.has_all(cat.keys):
        records += " LIMIT 0"  # as the snapshot does: no value of a key, no records
    if kind == "csv":
        sql = csv_query(cat.category, records)
        return Query(category, sql, tuple(args), csv_options(cat.category))
    if kind == "json":
        return Query(category, json_query(records), tuple(args), _JSON)
    if kind == "plain":
        return Query(category, records, tuple(args), _CSV)
    raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")


async def copy_one(stores: Stores, q: Query) -> Copied:
    """One COPY of one query into a dropping sink (the web-analytics baselines)."""
    sink = Sink()
    start = time.perf_counter()
    async with stores.postgres(q.category).pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute(_SESSION)
            await conn.copy_from_query(q.sql, *q.args, output=sink, timeout=1800, **q.options)
    return Copied(time.perf_counter() - start, sink.bytes)


async def every_category(stores: Stores, catalogue: Catalogue, person: Person, fmt: str) -> Copied:
    """The sum of bare per-category COPYs of one person, store by store (one read-only
    transaction each, as the bundle does), plus reading their media files: the whole-bundle
    baseline."""
    sink = Sink()
    start = time.perf_counter()
    for store in stores.by_name.values():
        cats = [c.key for c in catalogue if stores.store_of(c.key) is store]
        if not cats:
            continue
        if isinstance(store, PostgresStore):
            async with store.pool.acquire() as conn:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    await conn.execute(_SESSION)
                    for key in cats:
                        q = query(stores, key, person, fmt)
                        await conn.copy_from_query(
                            q.sql, *q.args, output=sink, timeout=1800, **q.options
                        )
        elif isinstance(store, FilesStore):
            for key in cats:
                listing = await store.listing(key, person)
                for path in listing.paths.values():
                    async for data in store.read(path):
                        await sink(data)
        else:
            raise RuntimeError(f"store {store.name}: only PostgreSQL and files are benchmarked")
    return Copied(time.perf_counter() - start, sink.bytes)
