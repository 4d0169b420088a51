"""The baselines: bare asyncpg `copy_from_query` into a sink that drops the bytes.

Run in the benchmark's own process, with the session settings the bundle's snapshot uses (UTC,
ISO dates, no 30 s statement timeout), ordered by the same index, so the only difference left
is what dsar does on top: its SQL, the ZIP, HTTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from stores.media import MediaStore

from catalogue import Catalogue, Category
from stores.postgres import PostgresStore, select_list
from stores.registry import Stores
from stores.streams import csv_query

_SESSION = (
    "SET LOCAL statement_timeout = 0; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'"
)


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


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def rows_query(category: Category, json: bool) -> str:
    """The category's records of one subject ($1), in index order; as JSON lines if `json`."""
    names = {f.name for f in category.fields}
    order = [k for k in (category.time_field, "id") if k is not None and k in names]
    rows = (
        f"SELECT {select_list(category)} FROM {_quote(category.key)} "  # noqa: S608  # catalogue identifiers; the subject is a parameter
        "WHERE subject_id = $1"
        + (" ORDER BY " + ", ".join(_quote(k) for k in order) if order else "")
    )
    return f"SELECT row_to_json(r) FROM ({rows}) AS r" if json else rows  # noqa: S608  # same


def _options(fmt: str) -> dict[str, Any]:
    return {"format": "csv", "header": True} if fmt == "csv" else {}


async def copy_one(stores: Stores, query: str, sid: UUID, fmt: str, category: str) -> Copied:
    """One COPY of one query into a dropping sink (the web-analytics baselines)."""
    sink = Sink()
    start = time.perf_counter()
    async with stores.postgres(category).pool.acquire() as conn, conn.transaction():
        await conn.execute(_SESSION)
        await conn.copy_from_query(query, sid, output=sink, timeout=1800, **_options(fmt))
    return Copied(time.perf_counter() - start, sink.bytes)


def web_analytics_queries(catalogue: Catalogue) -> dict[str, str]:
    cat = catalogue.category("web_analytics")
    return {
        "csv": rows_query(cat, json=False),
        "json": rows_query(cat, json=True),
        # The bundle's own CSV SQL (formula neutralising CASE, booleans as text).
        "csv-export-sql": csv_query(cat),
    }


async def every_category(stores: Stores, catalogue: Catalogue, sid: UUID, fmt: str) -> Copied:
    """The sum of bare per-category COPYs of one subject, store by store (one read-only
    transaction each, as the bundle does), plus reading its media files: the whole-bundle
    baseline."""
    sink = Sink()
    start = time.perf_counter()
    for store in stores.by_name.values():
        cats = [catalogue.category(k) for k in catalogue.keys if stores.by_category[k] is store]
        if isinstance(store, PostgresStore):
            async with store.pool.acquire() as conn:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    await conn.execute(_SESSION)
                    for c in cats:
                        await conn.copy_from_query(
                            rows_query(c, fmt == "json"),
                            sid,
                            output=sink,
                            timeout=1800,
                            **_options(fmt),
                        )
        elif isinstance(store, MediaStore) and cats:
            for row in (await store.files([sid]))[sid]:
                path = store.path_of(sid, row["file_name"])
                if path is not None:
                    async for data in store.read(path):
                        await sink(data)
    return Copied(time.perf_counter() - start, sink.bytes)
