"""Streaming one subject's records out of a PostgreSQL store, for exports.

Everything of one store is read inside one read-only REPEATABLE READ transaction (a
`Snapshot`), so a bundle shows each store as it was at one instant. Records leave the database
through COPY of the category's mapped SELECT, in its `order`, as bytes that are never held whole
in memory: CSV is produced by PostgreSQL itself (formulas neutralised on its bytes,
`stores._formulas`), JSON as one `row_to_json` object per line.
Withheld fields are selected only as `<name>_held` booleans (`stores.postgres.field_sql`), so
their values never leave the database.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, MutableMapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.protocol import NO_TIMEOUT

from catalogue import Category
from stores._formulas import FORMULA_STARTS as FORMULA_STARTS  # the rule's one home
from stores._formulas import Neutraliser
from stores.mapping import Person
from stores.pool import SNAPSHOT_ACQUIRE_TIMEOUT
from stores.postgres import MappedCategory, PostgresStore, quote
from stores.tracing import ended as ended_span
from stores.tracing import stream_span

# The reader takes what COPY has sent in pieces of at least _BATCH bytes (or the last): each
# piece is one item of the queue to the ZIP thread, and COPY sends about 8 kB at a time.
# At most _BUFFERED bytes wait for the reader: memory stays bounded, COPY waits. Both are the
# size of a slice of an export's work on the event loop: a piece is neutralised and hashed in
# one go, and while an export gives way to small requests (domain/budget.py) its COPY is still
# read until the buffer is full. At 256 kB and 1 MiB, small queries under four exports of a
# million rows waited 100 to 155 ms (p99; 10 to 14 ms idle), at 64 kB and 256 kB 47 to 66 ms,
# for the same speed of one export alone.
_BATCH = 64 * 1024
_BUFFERED = 256 * 1024

Connection = asyncpg.Connection | PoolConnectionProxy
# How long `Snapshot.beside` waits for its second connection. The pool keeps two for each
# export's turn (stores.pool.SNAPSHOTS), so one is free, or is made: connecting to a distant
# database takes longer than an instant (at 50 ms, none was ever made through 30 ms of latency
# a packet). Past this, the pages are read after each data file instead.
BESIDE_ACQUIRE_TIMEOUT = 1.0
# What pg_export_snapshot() returns, such as 00000003-0000001B-1: hex words and dashes.
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+)+")


def _held(category: Category, name: str) -> bool:
    return name.endswith("_held") and name not in {f.name for f in category.fields}


def _csv_column(category: Category, name: str) -> str:
    col = f"r.{quote(name)}"
    # Timestamps keep PostgreSQL's own text, ISO 8601 under DateStyle ISO (set by `snapshot`)
    # such as 2025-01-01 00:00:07+00: to_json()'s "T" form would cost a third more per row.
    if _held(category, name) or category.field(name).type == "boolean":
        return f"{col}::text AS {quote(name)}"
    return f"{col} AS {quote(name)}"


def columns(category: Category) -> tuple[str, ...]:
    """The columns of an exported record: withheld fields become `<name>_held`."""
    return tuple(f.name + "_held" if f.withheld else f.name for f in category.fields)


def text_columns(category: Category) -> tuple[str, ...]:
    """The columns whose cells are text (string, text): those formula neutralisation treats."""
    return tuple(
        c
        for c in columns(category)
        if not _held(category, c) and category.field(c).type in ("string", "text")
    )


def csv_query(category: Category, records: str) -> str:
    """The records as CSV cells: booleans as true/false. Formulas are neutralised on the bytes
    (`stores._formulas`), which needs the COPY options of `csv_options`."""
    cells = ", ".join(_csv_column(category, c) for c in columns(category))
    return f"SELECT {cells} FROM ({records}) AS r"  # noqa: S608  # checked identifiers only


def csv_options(category: Category) -> dict[str, Any]:
    """COPY options of `csv_query`: RFC 4180 with a header row, text cells always quoted (a
    NULL stays an empty unquoted cell, the empty string is `""`, as without FORCE_QUOTE)."""
    options: dict[str, Any] = {"format": "csv", "header": True, "encoding": "UTF8"}
    if text := text_columns(category):
        options["force_quote"] = text
    return options


def json_query(records: str) -> str:
    """The records as one JSON object a row; conversions happen in the records' SELECT."""
    return f"SELECT row_to_json(r) FROM ({records}) AS r"  # noqa: S608  # checked identifiers only


@dataclass(frozen=True, slots=True)
class Held:
    """Records of one category holding a withheld field; `about` names the kind (e.g. ssn)."""

    category: str
    field: str
    records: int
    about: tuple[tuple[str, str], ...] = ()


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancels `task` if it still runs and waits until it has ended; its exception, if any, is
    retrieved (its reader has seen it already, or left early)."""
    if not task.done():
        task.cancel()
        await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


_PARAMETER = re.compile(r"\$(\d+)\b")


async def inline(
    conn: Connection,
    query: str,
    args: Sequence[Any],
    parameter_types: MutableMapping[str, tuple[str, ...]],
) -> str:
    """`query` with its parameters written in as literals, quoted by the server: COPY takes no
    parameters.

    asyncpg's `copy_from_query` does the same on every COPY in two round trips: it prepares the
    query to learn the parameters' types, then asks the server to quote the values as those
    types. Here the types are learnt once a query text (`parameter_types`, the store's own: a
    query's text is the same for every person) and the quoting is the one round trip left: a
    bundle of eleven small categories spent 11 % of its samples preparing its COPYs."""
    if not args:
        return query
    types = parameter_types.get(query)
    if types is None:
        statement = await conn.prepare(query)
        types = tuple(
            f"{quote(t.schema)}.{quote('_' + t.name[:-2] if t.name.endswith('[]') else t.name)}"
            for t in statement.get_parameters()
        )
        parameter_types[query] = types
    cells = ", ".join(f"quote_literal(${n}::{t}::text)" for n, t in enumerate(types, 1))
    quoted = await conn.fetchrow(f"SELECT {cells}", *args)  # type names from the server
    assert quoted is not None

    def literal(m: re.Match[str]) -> str:
        value = quoted[int(m.group(1)) - 1]
        return "NULL" if value is None else str(value)

    return _PARAMETER.sub(literal, query)


class CopyStream:
    """`COPY (query) TO STDOUT` as an async iterator of bytes; `records` once it is exhausted.

    COPY pushes into a callback; a bounded buffer turns that into a pull, so a slow reader
    pauses the COPY instead of buffering it. An error of the COPY (a dropped connection, a
    timeout) is raised by the iterator after the bytes that came before it.

    `deadline` (seconds) bounds the whole COPY, waits for the reader included, with one
    `asyncio.timeout`. asyncpg's own `timeout` would instead arm a timer and a `wait_for` per
    chunk of about 8 kB (asyncio's `Timeout` was 15 % of the server's samples in a CSV export's
    profile), and its default is the pool's 30 s `command_timeout`: `NO_TIMEOUT` turns both off.
    """

    def __init__(
        self,
        conn: Connection,
        query: str,
        args: Sequence[Any],
        options: dict[str, Any],
        traced: tuple[str, str] = ("", ""),
        deadline: float | None = None,
        neutralise: bool = False,
        parameter_types: MutableMapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._conn = conn
        self._query = query
        self._args = tuple(args)
        self._parameter_types = {} if parameter_types is None else parameter_types
        self._options = options
        self._deadline = deadline
        self._neutralise = neutralise  # CSV of `csv_query` with `csv_options`
        self._task: asyncio.Task[str] | None = None
        self._traced = traced  # (store, category) of its span
        self.records: int | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        parts: list[bytes] = []
        size = 0
        ended = False
        ready = asyncio.Event()  # a batch is there, or the COPY ended
        room = asyncio.Event()  # fewer than _BUFFERED bytes wait
        room.set()

        async def sink(data: bytes) -> None:
            nonlocal size
            parts.append(data)
            size += len(data)
            if size >= _BATCH:
                ready.set()
            if size >= _BUFFERED:
                room.clear()
                await room.wait()

        async def copy() -> str:
            nonlocal ended
            try:
                async with asyncio.timeout(self._deadline):
                    query = await inline(self._conn, self._query, self._args, self._parameter_types)
                    return await self._conn.copy_from_query(
                        query,
                        output=sink,
                        # asyncpg's sentinel (what its own close_statement passes); the stubs
                        # know only float | None, and None means the pool's command_timeout.
                        timeout=NO_TIMEOUT,  # type: ignore[arg-type]
                        **self._options,
                    )
            except asyncpg.PostgresError:
                # Types learnt before a change of the company's schema: learnt again next time.
                self._parameter_types.pop(self._query, None)
                raise
            finally:
                # Wakes the reader whether COPY ended or failed; cancelled if nobody reads.
                ended = True
                ready.set()

        task = self._task = asyncio.create_task(copy())
        cells = Neutraliser() if self._neutralise else None
        span = stream_span("postgresql", *self._traced)
        error: BaseException | None = None
        try:
            while True:
                await ready.wait()
                if not parts:
                    break  # ended, and everything before the end was read
                data = b"".join(parts) if len(parts) > 1 else parts[0]
                parts.clear()
                size = 0
                if not ended:
                    ready.clear()
                room.set()
                yield data if cells is None else cells(data)
            status = await task  # raises what the COPY raised
            self.records = int(status.rsplit(" ", 1)[-1])
        except BaseException as exc:
            error = exc
            raise
        finally:
            ended_span(span, self.records, error)
            await self.close()

    async def close(self) -> None:
        """Stops the COPY if it still runs (the reader left early); idempotent."""
        if self._task is not None:
            await stop_task(self._task)


class Snapshot:
    """One store's data as of one instant: a read-only REPEATABLE READ transaction."""

    description = "one read-only REPEATABLE READ transaction: a single consistent snapshot"

    def __init__(self, store: PostgresStore, conn: Connection, taken_at: datetime):
        self.store = store
        self.conn = conn
        self.taken_at = taken_at
        self.copy_timeout: float | None = None
        # Whether this transaction may export its snapshot (`beside`): asking without the right
        # would abort it.
        self.shareable = False
        # A delta: only records whose time field is after this (categories with one).
        self.since: datetime | None = None
        # A copy's own variants of categories whose withheld items its rule releases.
        self.released: dict[str, Category] = {}
        self._streams: list[CopyStream] = []

    def _mapped(self, key: str) -> MappedCategory:
        """The category as this copy reads it: released items selected as values."""
        cat = self.store.categories[key]
        variant = self.released.get(key)
        return cat if variant is None else MappedCategory(variant, cat.mapped, self.store.types)

    def csv(self, key: str, person: Person) -> CopyStream:
        """RFC 4180 CSV with a header row, UTF-8, CRLF-free (PostgreSQL ends rows with LF);
        every non-null text cell quoted, formula-neutralised."""
        cat = self._mapped(key)
        args: list[Any] = []
        query = csv_query(cat.category, self._records(cat, person, args))
        return self._copy(key, query, args, csv_options(cat.category), neutralise=True)

    def json_lines(self, key: str, person: Person, limit: int | None = None) -> CopyStream:
        """One JSON object per line, in record order; at most `limit` records when given.

        CSV format with a quote and delimiter that never occur raw in JSON text (control
        characters are always escaped there) passes the JSON through COPY unchanged; text
        format would double every backslash.
        """
        cat = self._mapped(key)
        args: list[Any] = []
        if limit is not None and self.since is None and person.has_all(cat.keys):
            # The first records as a page (`page_sql`): an index walk per key value that stops
            # at `limit`, where LIMIT on `records_sql` sorted every record of the person first
            # (the bundle's web pages of a million events: half a second of PostgreSQL's CPU).
            page = cat.page_sql(person, args, int(limit), None)
            cells = ", ".join(f"p.{quote(c)}" for c in columns(cat.category))
            records = f"SELECT {cells} FROM ({page}) AS p"  # noqa: S608  # checked identifiers only
        else:
            records = self._records(cat, person, args)
            if limit is not None:
                records = f"SELECT * FROM ({records}) AS l LIMIT {int(limit)}"  # noqa: S608  # an int
        query = json_query(records)
        options = {"format": "csv", "quote": "\x01", "delimiter": "\x02", "encoding": "UTF8"}
        return self._copy(key, query, args, options)

    def _records(self, cat: MappedCategory, person: Person, args: list[Any]) -> str:
        sql = cat.records_sql(person, args, self.since)
        # A person without a value of a key the category matches on has none of its records.
        return sql if person.has_all(cat.keys) else sql + " LIMIT 0"

    def _copy(
        self,
        key: str,
        query: str,
        args: list[Any],
        options: dict[str, Any],
        neutralise: bool = False,
    ) -> CopyStream:
        traced = (self.store.name, key)
        stream = CopyStream(
            self.conn,
            query,
            args,
            options,
            traced,
            self.copy_timeout,
            neutralise,
            self.store.parameter_types,
        )
        self._streams.append(stream)
        return stream

    async def close(self) -> None:
        """Stops any COPY still running, so the connection is free for the rollback."""
        for stream in self._streams:
            await stream.close()

    @asynccontextmanager
    async def beside(self) -> AsyncIterator[Snapshot | None]:
        """The same instant on a second connection, when one comes within
        `BESIDE_ACQUIRE_TIMEOUT`: an export reads a category's web pages there while its data
        file streams here (exporters/bundle.py).

        This transaction exports its snapshot (`pg_export_snapshot`) and the second one
        imports it, so both read exactly the same data. None when no connection is free or
        the server cannot share its snapshot: the caller reads here, one thing after another.
        Call it between two COPYs of this snapshot, never during one.
        """
        if not self.shareable:
            yield None
            return
        pool = self.store.snapshots
        try:
            conn = await pool.acquire(timeout=BESIDE_ACQUIRE_TIMEOUT)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            yield None
            return
        try:
            other = await self._share(conn)
            if other is None:
                yield None
                return
            try:
                yield other
            finally:
                await other.close()
        finally:
            try:
                # Read only: rolling back ends it as well as a commit would.
                with suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    if not conn.is_closed():
                        await conn.execute("ROLLBACK")
            finally:
                # Even when the rollback is cancelled (a second cancel): asyncpg's release is
                # shielded and ends a transaction still open.
                await pool.release(conn)

    async def _share(self, conn: Connection) -> Snapshot | None:
        try:
            ident = await self.conn.fetchval("SELECT pg_export_snapshot()")
            if not isinstance(ident, str) or not _SNAPSHOT_ID.fullmatch(ident):
                return None
            ms = int((self.copy_timeout or 0) * 1000)
            await conn.execute(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                f"SET TRANSACTION SNAPSHOT '{ident}'; "
                f"{_bounds(ms)}; {SNAPSHOT_SETTINGS}"
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            return None
        other = Snapshot(self.store, conn, self.taken_at)
        other.copy_timeout = self.copy_timeout
        other.since = self.since
        other.released = self.released
        return other

    async def held(self, key: str, person: Person) -> list[Held]:
        """Which withheld items this person has, counted without reading a single value."""
        cat = self.store.categories[key]
        category = cat.category
        withheld = category.withheld_fields
        if not withheld or not person.has_all(cat.keys):
            return []
        kinds = [f.name for f in category.disclosed_fields if f.values]
        counts = ", ".join(
            f"count(*) FILTER (WHERE {cat.column(f.name)} IS NOT NULL) AS {quote(f.name)}"
            for f in withheld
        )
        groups = ", ".join(f"{cat.column(k)}::text AS {quote(k)}" for k in kinds)
        by = ", ".join(str(i + 1) for i in range(len(kinds)))
        args: list[Any] = []
        where = cat.where.sql(person, args)
        sql = (
            f"SELECT {groups + ', ' if kinds else ''}{counts} FROM {cat.table} t "  # noqa: S608  # identifiers from the checked stores file; values are parameters
            f"WHERE {where} {'GROUP BY ' + by + ' ORDER BY ' + by if kinds else ''}"
        )
        out = []
        for row in await self.conn.fetch(sql, *args):
            about = tuple((k, str(row[k])) for k in kinds)
            for f in withheld:
                if row[f.name]:
                    out.append(Held(category.key, f.name, row[f.name], about))
        return out

    async def undated(self, key: str, person: Person) -> int:
        """How many of the person's records a delta (`since`) leaves out because their time
        is empty: it cannot tell whether they are new. 0 outside a delta."""
        cat = self.store.categories[key]
        if self.since is None or cat.time_column is None or not person.has_all(cat.keys):
            return 0
        args: list[Any] = []
        where = cat.where.sql(person, args)
        n = await self.conn.fetchval(
            f"SELECT count(*) FROM {cat.table} t "  # noqa: S608  # identifiers from the checked stores file; values are parameters
            f"WHERE {where} AND t.{quote(cat.time_column)} IS NULL",
            *args,
        )
        return int(n)


# An export's transaction: timestamps as UTC ISO 8601 text, no parallel workers, and random reads
# priced as on a cached or solid-state database. Under the default price (4, a spinning disk's)
# the walk of a person who holds a large share of a table is priced close to a scan and a sort (on
# the benchmark's data 341k against 386k, and the planner has chosen the sort on other
# statistics), even read one key value at a time (`MappedCategory.records_sql`): over a second and
# 100 MB of temporary files before the first row, work its reader cannot pace. At 1.1 the walks
# are a third of the sort's price, so the planner walks the (key, order) index of each value and
# merges the walks: for a million of a person's events among four million, the first row after
# 0.07 ms instead of 1.2 s, 0.85 s in all instead of 1.5 s, no temporary files instead of 106 MB.
# With parallel workers, each export took three backends' CPU and four exports took both cores of
# the benchmark's machine from everyone's small queries. SET LOCAL: the pools' own queries keep
# the server's defaults.
SNAPSHOT_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL random_page_cost = 1.1"
)


def _bounds(ms: int) -> str:
    """An export transaction's time bounds: each statement, and each wait between statements.
    A snapshot sits idle while the one beside it is read or its pages are written, and the one
    beside while a data file streams: a server that ends idle transactions sooner (a replica's
    or a managed database's `idle_in_transaction_session_timeout`) would end the export."""
    return (
        f"SET LOCAL statement_timeout = {ms}; SET LOCAL idle_in_transaction_session_timeout = {ms}"
    )


@asynccontextmanager
async def snapshot(
    store: PostgresStore, *, statement_timeout: float = 600.0
) -> AsyncIterator[Snapshot]:
    """Holds one connection of `store` in a read-only REPEATABLE READ transaction.

    An export of a heavy subject is one long COPY, longer than the pool's 30 s statement
    timeout allows: the transaction gets its own bound (`statement_timeout`, in seconds).
    """
    async with store.snapshots.acquire(timeout=SNAPSHOT_ACQUIRE_TIMEOUT) as conn:
        tx = conn.transaction(isolation="repeatable_read", readonly=True)
        await tx.start()
        try:
            ms = int(statement_timeout * 1000)
            await conn.execute(f"{_bounds(ms)}; {SNAPSHOT_SETTINGS}")
            # The first query takes the snapshot; now() is the time it was taken.
            first = await conn.fetchrow(
                "SELECT now(), has_function_privilege('pg_catalog.pg_export_snapshot()', 'EXECUTE')"
            )
            assert first is not None  # one row, always
            taken_at, shareable = first
            snap = Snapshot(store, conn, taken_at)
            snap.copy_timeout = statement_timeout
            snap.shareable = bool(shareable)
            try:
                yield snap
            finally:
                await snap.close()
        finally:
            # Read only: rolling back ends it as well as a commit would. A connection that
            # died mid-stream has nothing to roll back; its own error is the one to raise.
            if not conn.is_closed():
                with suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    await tx.rollback()
