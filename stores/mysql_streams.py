"""Streaming one subject's records out of a MySQL or MariaDB store, for exports.

The bytes are exactly those `stores.streams` writes for the same rows in PostgreSQL, so a bundle
does not depend on where a category lives: CSV as `COPY … (FORMAT csv, HEADER)` writes it, JSON
lines as `row_to_json` does. Everything of one store is read in one read-only transaction
started WITH CONSISTENT SNAPSHOT, through an unbuffered cursor, so memory stays flat whatever
the number of records.

The work per record is the cost of an export, so it is split where it is cheapest. SQL converts
each value to its final text (timestamps as PostgreSQL prints them, booleans as true/false,
formula neutralisation) and marks NULL and the empty string with `NULL_MARK`/`EMPTY_MARK`; Python
then handles a whole batch of rows with a few C-level calls (`str.join`, `str.replace`,
`orjson.dumps`) and falls back to a cell-by-cell path only for a batch holding a value that CSV
must quote.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import orjson
from asyncmy.connection import Connection
from asyncmy.cursors import SSCursor

from catalogue import Category, Field
from stores.mapping import Person
from stores.mysql import (
    MappedCategory,
    MySQLStore,
    held_sql,
    is_time,
    quote,
    timestamp_text,
)
from stores.mysql_pool import COMMAND_GRACE
from stores.pool import SNAPSHOT_ACQUIRE_TIMEOUT, bound_receive_buffer
from stores.streams import FORMULA_STARTS, Held, columns, text_columns
from stores.tracing import ended as ended_span
from stores.tracing import stream_span

CHUNK = 64 * 1024
# A text cell never starts with a tab once formula-neutralised (a leading tab gets a `'`), so a
# cell that starts with one can only be a mark: NULL (empty in CSV) or the empty string ("").
NULL_MARK = "\t"
EMPTY_MARK = "\t\t"
_STARTS_SQL = ", ".join(str(ord(c)) for c in FORMULA_STARTS)

Rows = list[tuple[Any, ...]]


def _text_cell(col: str) -> str:
    return (
        f"CASE WHEN {col} IS NULL THEN '{NULL_MARK}' WHEN LENGTH({col}) = 0 THEN '{EMPTY_MARK}' "
        f"WHEN ORD({col}) IN ({_STARTS_SQL}) THEN CONCAT('''', {col}) ELSE {col} END"
    )


def csv_cell(f: Field, col: str) -> str:
    """One CSV cell as PostgreSQL's COPY prints the value `stores.streams` selects."""
    if f.withheld:
        return f"IF({held_sql(f, col)}, 'true', 'false')"
    if f.type == "integer":
        return f"IFNULL(CAST(CAST({col} AS SIGNED) AS CHAR), '{NULL_MARK}')"
    if f.type == "boolean":
        return f"IF({col} IS NULL, '{NULL_MARK}', IF({col} <> 0, 'true', 'false'))"
    if f.type == "timestamp":
        return f"IFNULL({timestamp_text(col, ' ', '+00')}, '{NULL_MARK}')"
    if f.type == "uuid":
        return _text_cell(f"LOWER(CAST({col} AS CHAR))")
    # PostgreSQL neutralises string and text only; a valid inet never starts with one of
    # FORMULA_STARTS, so neutralising it too changes nothing but keeps the marks unambiguous.
    return _text_cell(f"CAST({col} AS CHAR)")


def json_cell(f: Field, col: str) -> str:
    if f.withheld:
        return held_sql(f, col)
    if f.type == "integer":
        return f"CAST({col} AS SIGNED)"
    if f.type == "boolean":
        return f"({col} <> 0)"
    if f.type == "timestamp":
        return timestamp_text(col, "T", "+00:00")
    if f.type == "uuid":
        return f"LOWER(CAST({col} AS CHAR))"
    return f"CAST({col} AS CHAR)"


def _pg_csv(cell: str, single: bool, forced: bool) -> str:
    """One cell by PostgreSQL's rules (CopyAttributeOutCSV): the slow, exact path. `forced`:
    a text column, which `stores.streams.csv_options` quotes whenever it is not NULL."""
    if cell == NULL_MARK:
        return ""
    if forced or cell == EMPTY_MARK or (single and cell == "\\."):
        return '"' + ("" if cell == EMPTY_MARK else cell.replace('"', '""')) + '"'
    if "," in cell or '"' in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_renderer(width: int, forced: Sequence[int] = ()) -> Callable[[Rows], bytes]:
    """Rows of `width` cells as PostgreSQL's CSV; the cells at `forced` always quoted."""
    commas = width - 1
    quotes = 2 * len(forced)
    # One row: its cells joined by commas, the forced ones between quotes (their marks too).
    template = ",".join('"%s"' if i in forced else "%s" for i in range(width))
    flags = [i in forced for i in range(width)]

    def render(rows: Rows) -> bytes:
        text = "\n".join(map(template.__mod__, rows))
        n = len(rows)
        if (
            width > 1
            and text.count(",") == n * commas
            and text.count("\n") == n - 1
            and text.count('"') == n * quotes
            and "\r" not in text
        ):
            # No value holds a delimiter, quote or line break: only the marks need work.
            # Every cell starts after a comma or a line break; the leading one is added.
            text = "\n" + text + "\n"
            if "\t" in text:
                # A value never starts with a tab (it would start a formula): only marks do.
                text = text.replace('"\t\t"', '""').replace('"\t"', "")
                text = text.replace(",\t\t", ',""').replace("\n\t\t", '\n""')
                text = text.replace(",\t", ",").replace("\n\t", "\n")
            return text[1:].encode()
        single = width == 1
        lines = [
            ",".join([_pg_csv(c, single, f) for c, f in zip(row, flags, strict=True)])
            for row in rows
        ]
        return ("\n".join(lines) + "\n").encode()

    return render


def json_renderer(names: Sequence[str], booleans: Sequence[int]) -> Callable[[Rows], bytes]:
    # orjson writes the batch as one array of objects; between two objects it writes
    # `},{"<first name>":`, which cannot occur inside a JSON string (a quote there is always
    # escaped), so replacing it with a line break splits the array into rows exactly.
    first = orjson.dumps(names[0])
    between, lines = b"},{" + first + b":", b"}\n{" + first + b":"
    dumps, keys = orjson.dumps, tuple(names)

    def fix(row: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(row)
        for i in booleans:
            if out[i] is not None:
                out[i] = out[i] != 0
        return tuple(out)

    def render(rows: Rows) -> bytes:
        if booleans:
            rows = [fix(r) for r in rows]
        blob = dumps(list(map(dict, map(zip, repeat(keys), rows))))
        return blob[1:-1].replace(between, lines) + b"\n"

    return render


class RowStream:
    """An unbuffered SELECT as an async iterator of ~64 kB chunks; `records` once exhausted."""

    def __init__(
        self,
        snap: Snapshot,
        sql: str | None,
        args: Sequence[Any],
        render: Callable[[Rows], bytes],
        category: str = "",
    ) -> None:
        self._snap = snap
        self._category = category  # for its span
        self._sql = sql
        self._args = tuple(args)
        self._render = render
        self.head = b""
        self.records: int | None = None
        self._reading = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        span = stream_span("mysql", self._snap.store.name, self._category)
        error: BaseException | None = None
        try:
            # Closed with this one, then and there: left to the garbage collector, its
            # finaliser ran later, on a connection the snapshot had closed.
            async with aclosing(self._chunks()) as chunks:
                async for chunk in chunks:
                    yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            ended_span(span, self.records, error)

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        parts, size, count = [self.head], len(self.head), 0
        if self._sql is not None:
            self._reading = True
            transport = self._snap.reading()
            cur = self._snap.conn.cursor(SSCursor)
            finished = False
            try:
                await cur.execute(self._sql, self._args)
                batch = 256
                while rows := await cur.fetchmany(batch):
                    count += len(rows)
                    data = self._render(rows)
                    parts.append(data)
                    size += len(data)
                    if size >= CHUNK:
                        # asyncmy reads all that arrives into its own buffer, however long the
                        # reader waits: a paused export took in the rest of its result (16 MB
                        # of 20 in a second, in tests/stores/test_mysql.py). Paused here, the
                        # rest waits in the socket (2 MB at most), then on the server.
                        transport.pause_reading()
                        try:
                            yield b"".join(parts)
                        finally:
                            transport.resume_reading()
                        parts, size = [], 0
                    # Half a chunk per batch, whatever the width of a row: chunks stay
                    # close to CHUNK (a batch costs a few C-level calls, whatever its size).
                    batch = max(64, min(8192, CHUNK // 2 * len(rows) // max(len(data), 1)))
                finished = True
            finally:
                # Read to its end: nothing is left to read. Left early (a reader that stopped,
                # an error): the rows left unread are not drained (a million would take long,
                # and asyncmy would do it at the snapshot's next statement): the connection,
                # and with it the snapshot, ends here (`close`).
                if finished:
                    await cur.close()
                else:
                    self.close()
            self._reading = False
        if size:
            yield b"".join(parts)
        self.records = count

    def close(self) -> None:
        """A reader that left mid-stream leaves unread rows on the connection: it is closed
        (draining a million rows would take longer), which also ends the snapshot."""
        if self._reading:
            self._reading = False
            self._snap.conn.close()


class Snapshot:
    """One store's data as of one instant: a read-only transaction WITH CONSISTENT SNAPSHOT."""

    description = "one read-only transaction WITH CONSISTENT SNAPSHOT: a single consistent snapshot"

    def __init__(self, store: MySQLStore, conn: Connection, taken_at: datetime) -> None:
        self.store = store
        self.conn = conn
        self.taken_at = taken_at
        # A delta: only records whose time field is after this (categories with one).
        self.since: datetime | None = None
        # A copy's own variants of categories whose withheld items its rule releases.
        self.released: dict[str, Category] = {}
        self._streams: list[RowStream] = []

    def reading(self) -> Any:
        """The connection's transport, reading again: a stream left at one of its chunks
        (`RowStream`, reading paused) would leave the next statement waiting for bytes that
        nothing reads, where asyncmy first reads what is left of that stream's result."""
        transport = self.conn._transport  # type: ignore[attr-defined]  # public in the Cython class, missing from its stub
        transport.resume_reading()
        return transport

    def _mapped(self, key: str) -> MappedCategory:
        """The category as this copy reads it: released items selected as values."""
        cat = self.store.categories[key]
        variant = self.released.get(key)
        return cat if variant is None else MappedCategory(variant, cat.mapped, self.store.types)

    def csv(self, key: str, person: Person) -> RowStream:
        """RFC 4180 CSV with a header row, UTF-8, rows ended by LF, as PostgreSQL writes it."""
        cat = self._mapped(key)
        cells = [csv_cell(f, cat.column(f.name)) for f in cat.category.fields]
        names = columns(cat.category)
        text = set(text_columns(cat.category))
        forced = [i for i, name in enumerate(names) if name in text]
        stream = self._stream(cat, person, cells, csv_renderer(len(cells), forced))
        stream.head = (",".join(names) + "\n").encode()
        return stream

    @asynccontextmanager
    async def beside(self) -> AsyncIterator[Snapshot | None]:
        """None: a MySQL transaction's consistent snapshot cannot be shared with another
        connection, so an export reads its pages here after each data file."""
        yield None

    def json_lines(self, key: str, person: Person, limit: int | None = None) -> RowStream:
        """One JSON object per line, in record order, as `row_to_json` writes it."""
        cat = self._mapped(key)
        fields = cat.category.fields
        cells = [json_cell(f, cat.column(f.name)) for f in fields]
        booleans = [i for i, f in enumerate(fields) if f.withheld or f.type == "boolean"]
        render = json_renderer(columns(cat.category), booleans)
        return self._stream(cat, person, cells, render, limit)

    def _stream(
        self,
        cat: MappedCategory,
        person: Person,
        cells: list[str],
        render: Callable[[Rows], bytes],
        limit: int | None = None,
    ) -> RowStream:
        args: list[Any] = []
        body = cat.body(person, args, self.since)
        sql = None if body is None else f"SELECT {', '.join(cells)}{body}{cat.order_by}"
        if sql is not None and limit is not None:
            sql += f" LIMIT {int(limit)}"
        stream = RowStream(self, sql, args, render, cat.category.key)
        self._streams.append(stream)
        return stream

    async def close(self) -> None:
        for stream in self._streams:
            stream.close()

    async def undated(self, key: str, person: Person) -> int:
        """How many of the person's records a delta (`since`) leaves out because their time is
        empty (NULL, or a date with a zero in it): it cannot tell whether they are new. 0
        outside a delta."""
        cat = self.store.categories[key]
        args: list[Any] = []
        body = cat.body(person, args)
        if self.since is None or cat.time_column is None or body is None:
            return 0
        self.reading()
        col = f"t.{quote(cat.time_column)}"
        async with self.conn.cursor() as cur:
            await cur.execute(
                f"SELECT COUNT(*){body} AND ({col} IS NULL OR NOT {is_time(col)})", tuple(args)
            )  # checked identifiers only
            (n,) = await cur.fetchone()
        return int(n)

    async def held(self, key: str, person: Person) -> list[Held]:
        """Which withheld items this person has, counted without reading a single value."""
        cat = self.store.categories[key]
        category = cat.category
        withheld = category.withheld_fields
        args: list[Any] = []
        body = cat.body(person, args)
        if not withheld or body is None:
            return []
        kinds = [f.name for f in category.disclosed_fields if f.values]
        counts = [f"SUM({held_sql(f, cat.column(f.name))})" for f in withheld]
        groups = [f"CAST({cat.column(k)} AS CHAR)" for k in kinds]
        by = ", ".join(str(i + 1) for i in range(len(kinds)))
        group_by = f" GROUP BY {by} ORDER BY {by}" if kinds else ""
        self.reading()
        async with self.conn.cursor() as cur:
            await cur.execute(
                f"SELECT {', '.join(groups + counts)}{body}{group_by}", tuple(args)
            )  # checked identifiers only
            rows = await cur.fetchall()
        out = []
        for row in rows:
            about = tuple((k, str(v)) for k, v in zip(kinds, row, strict=False))
            for f, n in zip(withheld, row[len(kinds) :], strict=True):
                if n:
                    out.append(Held(category.key, f.name, int(n), about))
        return out


@asynccontextmanager
async def snapshot(
    store: MySQLStore, *, statement_timeout: float = 600.0
) -> AsyncIterator[Snapshot]:
    """Holds one connection of `store` in a read-only transaction WITH CONSISTENT SNAPSHOT.

    An export of a heavy subject is one long SELECT: the session gets its own bounds
    (`statement_timeout`, in seconds), and the server waits as long for a slow reader
    (`net_write_timeout`) instead of dropping the stream after its default 60 s. Those are
    session settings, so the connection is closed afterwards instead of going back to the pool.
    """
    seconds = max(1, int(statement_timeout))
    bound = (
        f"max_statement_time = {seconds}"
        if store.mariadb
        else f"max_execution_time = {seconds * 1000}"
    )
    async with store.connection(SNAPSHOT_ACQUIRE_TIMEOUT) as conn:
        try:
            # As a PostgreSQL export's (stores/pool.py): paused, the server's thread stops
            # within 2 MB. The connection is closed afterwards, as below.
            bound_receive_buffer(conn._transport)  # type: ignore[attr-defined]  # public in the Cython class, missing from its stub
            # The client's own read bound, public on asyncmy's connection; this one is closed
            # at the end, so the change does not outlive the export.
            conn._read_timeout = statement_timeout + COMMAND_GRACE  # type: ignore[attr-defined]  # public in the Cython class, missing from its stub
            async with conn.cursor() as cur:
                await cur.execute(f"SET SESSION {bound}, net_write_timeout = {seconds}")
                await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                await cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                await cur.execute("SELECT UTC_TIMESTAMP(6)")
                row = await cur.fetchone()
            snap = Snapshot(store, conn, row[0].replace(tzinfo=UTC))
            try:
                yield snap
            finally:
                await snap.close()
        finally:
            conn.close()
