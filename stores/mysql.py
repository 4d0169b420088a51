"""A MySQL or MariaDB store over the company's own schema, read the way `stores.postgres` reads
PostgreSQL: one parameterised statement per category, the mapped columns aliased to the
catalogue's field names and converted to the field's type in SQL, on rows whose `match` columns
equal any of the person's key values (one `IN (…)` per column, never a statement per value).
Withheld fields (CCPA regulations §7024(d)) are never selected, only whether a value is held.

Sessions run in UTC (`time_zone = '+00:00'`), so TIMESTAMP columns read as UTC; DATETIME
columns hold no zone and are taken to be UTC, as the stores file documents.

A date with a zero in it (`0000-00-00`, or `2020-00-00`: what MySQL keeps outside its strict
modes, often for "no date") is no time at all: every read gives it as an empty value, as
PostgreSQL's NULL, and a delta counts it among the records it cannot date (`is_time`).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncmy
from asyncmy.connection import Connection

from catalogue import Catalogue, Category, Field
from stores.config import CategoryConfig, KeyConfig, Match, SearchConfig, StoresConfig
from stores.mapping import (
    Fields,
    Person,
    Position,
    Row,
    Types,
    base_type,
    map_categories,
    tables_of,
)
from stores.mysql_pool import (
    ACQUIRE_TIMEOUT,
    PING_BUDGET,
    create_pool,
)
from stores.tracing import statement

# Column types whose values are compared as numbers: a key value that is not an integer
# matches nothing there (MySQL would read "abc" as 0 and match the row whose id is 0).
INTEGER_TYPES = frozenset({"bigint", "int", "integer", "smallint", "tinyint", "mediumint"})


def quote(ident: str) -> str:
    # Identifiers come from the validated stores file (plain names only); quoted anyway.
    return "`" + ident.replace("`", "``") + "`"


def quote_table(table: str) -> str:
    return ".".join(quote(part) for part in table.split("."))


def is_time(col: str) -> str:
    """SQL true where `col` holds a time: not NULL, and no zero in its date (MySQL keeps
    `0000-00-00` and `2020-00-00` outside its strict modes; no other system, and no Python
    datetime, can hold them)."""
    return f"(YEAR({col}) <> 0 AND MONTH({col}) <> 0 AND DAYOFMONTH({col}) <> 0)"


def held_sql(f: Field, col: str) -> str:
    """SQL true where the withheld field `f` holds a value (a date with a zero in it is none)."""
    if f.type == "timestamp":
        return f"IFNULL({is_time(col)}, FALSE)"
    return f"({col} IS NOT NULL)"


def timestamp_text(col: str, sep: str, zone: str) -> str:
    """PostgreSQL's text of a timestamptz in UTC: fraction trimmed of zeros, no dot if none;
    NULL where `col` holds no time (`is_time`).

    `%%` because statements go through the driver's `%` parameter formatting.
    """
    iso = f"DATE_FORMAT({col}, '%%Y-%%m-%%d{sep}%%H:%%i:%%s.%%f')"
    text = f"CONCAT(TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {iso})), '{zone}')"
    return f"IF({is_time(col)}, {text}, NULL)"


def field_sql(f: Field, column: str) -> str:
    """A field of a record as the service reads it (rows: `single`, `page`)."""
    col = f"t.{quote(column)}"
    name = quote(f.name + "_held" if f.withheld else f.name)
    if f.withheld:
        return f"{held_sql(f, col)} AS {name}"
    if f.type == "integer":
        return f"CAST({col} AS SIGNED) AS {name}"
    if f.type == "boolean":
        return f"({col} <> 0) AS {name}"
    if f.type == "timestamp":
        return f"IF({is_time(col)}, CAST({col} AS DATETIME(6)), NULL) AS {name}"
    if f.type == "uuid":
        return f"LOWER(CAST({col} AS CHAR)) AS {name}"
    return f"CAST({col} AS CHAR) AS {name}"


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


def _converter(f: Field) -> Callable[[Any], Any] | None:
    """The Python value of a field, as asyncpg gives it for PostgreSQL stores."""
    if f.withheld or f.type == "boolean":
        return _bool
    if f.type == "timestamp":
        return _utc
    return _uuid if f.type == "uuid" else None


class Where:
    """`match` as SQL: each column equal to any of the person's values of its key."""

    def __init__(self, types: Types, table: str, match: Match, alias: str = "t") -> None:
        self.numeric = {c: base_type(types[table][c]) in INTEGER_TYPES for c, _ in match}
        self.match = match
        self.alias = alias

    def sql(self, person: Person, args: list[Any]) -> str | None:
        """None when no row can match: a key without values, or none of the column's type."""
        parts = []
        for column, key in self.match:
            values = bind(person.of(key), self.numeric[column])
            if not values:
                return None
            args.extend(values)
            marks = ", ".join(["%s"] * len(values))
            col = f"{self.alias}.{quote(column)}"
            parts.append(f"{col} IN ({marks})")
            if not self.numeric[column]:
                # The collation may fold case, accents or trailing spaces, and a number column
                # converts text loosely: a byte-exact comparison beside it (the index still
                # serves the first) keeps `alice@x.com ` from reaching alice@x.com's rows.
                args.extend(values)
                parts.append(f"BINARY {col} IN ({marks})")
        return " AND ".join(parts)


def bind(values: Sequence[str], numeric: bool) -> list[Any]:
    # Integers travel as integers: exact beyond 2**53, where MySQL's string-to-number
    # comparison goes through a double.
    if not numeric:
        return list(values)
    return [int(v) for v in values if re.fullmatch(r"-?[0-9]{1,20}", v)]


class MappedCategory:
    """One category of this store: the SQL for its records, built once at start-up."""

    def __init__(self, category: Category, mapped: CategoryConfig, types: Types) -> None:
        self.category = category
        self.mapped = mapped
        self.table = quote_table(mapped.table)
        self.where = Where(types, mapped.table, mapped.match)
        self.keys = tuple(key for _, key in mapped.match)
        self.order = tuple(f"t.{quote(c)}" for c in mapped.order)
        self.order_by = " ORDER BY " + ", ".join(self.order) if self.order else ""
        self.all = self.selection(None)
        self.select = self.all.select
        time = category.time_field
        self.time_column = mapped.column(time) if time else None

    def column(self, field: str) -> str:
        return f"t.{quote(self.mapped.column(field))}"

    def body(self, person: Person, args: list[Any], since: datetime | None = None) -> str | None:
        """`FROM … WHERE …` of the person's records (None: they have none)."""
        where = self.where.sql(person, args)
        if where is None:
            return None
        if since is not None and self.time_column is not None:
            args.append(since.astimezone(UTC).replace(tzinfo=None))
            col = f"t.{quote(self.time_column)}"
            # `2020-00-00` is later than 2000 to MySQL, but no time: undated.
            where += f" AND {col} > %s AND {is_time(col)}"
        return f" FROM {self.table} t WHERE {where}"

    def after_sql(self, after: Position, args: list[Any]) -> str:
        """Keyset `(a, b) > (x, y)` spelt out, so that the index on the order columns is used.

        MySQL puts NULLs first: past a NULL of the position come the values that are not
        NULL, past a value no NULL comes (a record without a time is not lost to paging)."""
        ors = []
        for i, col in enumerate(self.order):
            ands = []
            for c, v in zip(self.order[:i], after[:i], strict=True):
                if v is None:
                    ands.append(f"{c} IS NULL")
                else:
                    ands.append(f"{c} = %s")
                    args.append(v)
            if after[i] is None:
                ands.append(f"{col} IS NOT NULL")
            else:
                ands.append(f"{col} > %s")
                args.append(after[i])
            ors.append("(" + " AND ".join(ands) + ")")
        return " AND (" + " OR ".join(ors) + ")"

    def selection(self, fields: Fields | None) -> Selection:
        """The select list of `fields` alone (catalogue names, in the catalogue's order), or of
        every field (None, or no field of this category)."""
        chosen = [f for f in self.category.fields if fields and f.name in fields]
        if not chosen:
            chosen = list(self.category.fields)
        select = ", ".join(field_sql(f, self.mapped.column(f.name)) for f in chosen)
        converters = [(i, c) for i, f in enumerate(chosen) if (c := _converter(f))]
        return Selection(select, converters, len(chosen))


@dataclass(frozen=True, slots=True)
class Selection:
    """Some fields of a category as a select list, and how their values become Python's."""

    select: str
    converters: list[tuple[int, Callable[[Any], Any]]]
    width: int

    def row(self, names: Sequence[str], values: Sequence[Any]) -> Row:
        out = dict(zip(names, values, strict=True))
        for i, convert in self.converters:
            name = names[i]
            out[name] = convert(out[name])
        return out


class MySQLStore:
    kind = "mysql"

    def __init__(self, name: str, pool: asyncmy.Pool, types: Types, mariadb: bool) -> None:
        self.name = name
        self.pool = pool
        self.types = types
        self.mariadb = mariadb
        self.categories: dict[str, MappedCategory] = {}
        # Statements sent, for /metrics and for tests that bound the queries of a request.
        self.statements = 0

    @classmethod
    async def open(
        cls, name: str, dsn: str, config: StoresConfig, catalogue: Catalogue
    ) -> MySQLStore:
        pool, mariadb = await create_pool(dsn)
        try:
            store = cls(name, pool, {}, mariadb)
            store.types = await store.introspect(tables_of(name, config))
            store.map(config, catalogue)
        except BaseException:
            pool.close()
            await pool.wait_closed()
            raise
        return store

    def map(self, config: StoresConfig, catalogue: Catalogue) -> None:
        """Checks every section of this store against the live schema; builds its SQL."""
        self.categories = map_categories(self.name, self.types, config, catalogue, MappedCategory)

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()

    @asynccontextmanager
    async def connection(self, wait: float = ACQUIRE_TIMEOUT) -> AsyncIterator[Connection]:
        """A pooled connection, waited for at most `wait` seconds (asyncmy waits forever)."""
        async with asyncio.timeout(wait):
            conn = await self.pool.acquire()
        try:
            yield conn
        except asyncmy.errors.InternalError:
            # Out of step with the protocol (a packet sequence number wrong): asyncmy keeps the
            # connection, and the next statement would read the rest of this reply as its own.
            conn.close()
            raise
        finally:
            self.pool.release(conn)

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.statements += 1
        async with self.connection() as conn, conn.cursor() as cur:
            with statement("mysql", self.name, sql) as span:
                await cur.execute(sql, tuple(args))
                names = [d[0] for d in cur.description or ()]
                rows = [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]
                span.set_attribute("dsar.records", len(rows))
            return rows

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(PING_BUDGET), self.connection(PING_BUDGET / 2) as conn:
                await conn.ping(reconnect=False)
                return True
        except (OSError, TimeoutError, asyncmy.errors.Error):
            return False

    async def introspect(self, tables: set[str]) -> dict[str, dict[str, str]]:
        """Each table's columns and their types; a table that does not exist has none."""
        out: dict[str, dict[str, str]] = {}
        for table in sorted(tables):
            schema, _, name = table.rpartition(".")
            rows = await self.fetch(
                "SELECT COLUMN_NAME AS c, DATA_TYPE AS t FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s",
                (schema or None, name),
            )
            out[table] = {r["c"]: str(r["t"]).lower() for r in rows}
        return out

    async def resolve_all(
        self, keys: Sequence[KeyConfig], person: Person
    ) -> list[tuple[list[str], int]]:
        return [await self.resolve(key, person) for key in keys]

    async def resolve(self, key: KeyConfig, person: Person) -> tuple[list[str], int]:
        """The values of `key` for a person whose earlier keys are known, and how many values
        were left out because other people's rows carry them too."""
        # Parameters bind in text order: the subquery in the SELECT list comes first.
        args: list[Any] = []
        others = Where(self.types, key.table, key.match, "o").sql(person, args)
        mine = Where(self.types, key.table, key.match, "t").sql(person, args)
        if mine is None or others is None:
            return [], 0  # a key without values: no statement
        col, table = quote(key.column), quote_table(key.table)
        sql = (
            f"SELECT CAST(m.v AS CHAR) AS v, EXISTS (SELECT 1 FROM {table} o "  # noqa: S608  # identifiers from the checked stores file; values are parameters
            f"WHERE o.{col} = m.v AND NOT ({others})) AS shared "
            f"FROM (SELECT DISTINCT t.{col} AS v FROM {table} t WHERE {mine} "
            f"AND t.{col} IS NOT NULL) m ORDER BY 1"
        )
        rows = await self.fetch(sql, args)
        return [r["v"] for r in rows if not r["shared"]], sum(1 for r in rows if r["shared"])

    async def anchor_value(self, key: KeyConfig, value: str) -> str | None:
        """The anchor value as stored (`01001` names user 1001), or None if none is."""
        where = Where(self.types, key.table, ((key.column, "anchor"),), "t")
        args: list[Any] = []
        cond = where.sql(Person(value, {"anchor": (value,)}), args)
        if cond is None:
            return None  # not a value of the anchor's type (e.g. letters for an integer id)
        sql = (
            f"SELECT CAST(t.{quote(key.column)} AS CHAR) AS v FROM {quote_table(key.table)} t "  # noqa: S608  # identifiers from the checked stores file; the value is a parameter
            f"WHERE {cond} LIMIT 1"
        )
        rows = await self.fetch(sql, args)
        return str(rows[0]["v"]) if rows else None

    async def search(self, search: SearchConfig, email: str, limit: int) -> list[str]:
        sql = (
            f"SELECT DISTINCT CAST({quote(search.anchor)} AS CHAR) AS a "  # noqa: S608  # identifiers from the checked stores file; values are parameters
            f"FROM {quote_table(search.table)} "
            f"WHERE LOWER({quote(search.column)}) = LOWER(%s) ORDER BY 1 LIMIT %s"
        )
        return [r["a"] for r in await self.fetch(sql, (email.strip(), limit))]

    async def single(self, key: str, person: Person, fields: Fields | None = None) -> Row | None:
        cat = self.categories[key]
        chosen = cat.all if fields is None else cat.selection(fields)
        args: list[Any] = []
        body = cat.body(person, args)
        if body is None:
            return None
        rows = await self.fetch(
            f"SELECT {chosen.select}{body}{cat.order_by} LIMIT 1", args
        )  # checked identifiers only
        return chosen.row(list(rows[0]), list(rows[0].values())) if rows else None

    async def page(
        self,
        key: str,
        person: Person,
        limit: int,
        after: Position | None,
        fields: Fields | None = None,
    ) -> list[Row]:
        """Up to `limit` records after `after`, in `order`; each row's `_pos` is its position."""
        cat = self.categories[key]
        chosen = cat.all if fields is None else cat.selection(fields)
        args: list[Any] = []
        body = cat.body(person, args)
        if body is None:
            return []
        if after is not None and cat.order:
            body += cat.after_sql(after, args)
        args.append(limit)
        pos = "".join(f", CAST({c} AS CHAR) AS `_pos{i}`" for i, c in enumerate(cat.order))
        sql = f"SELECT {chosen.select}{pos}{body}{cat.order_by} LIMIT %s"
        out = []
        width = chosen.width
        for r in await self.fetch(sql, args):
            names, values = list(r), list(r.values())
            row = chosen.row(names[:width], values[:width])
            row["_pos"] = tuple(values[width:])
            out.append(row)
        return out

    async def value(self, key: str, field: str, person: Person, record: str | None) -> str | None:
        """One field of one record as text (support's unmasking, after its audit row)."""
        cat = self.categories[key]
        args: list[Any] = []
        body = cat.body(person, args)
        if body is None:
            return None
        if record is not None:
            args.append(record)
            body += f" AND CAST({cat.column('id')} AS CHAR) = %s"
        col = cat.column(field)
        # As PostgreSQL prints it (`::text`); a date with a zero in it is no value.
        text = (
            timestamp_text(col, " ", "+00")
            if cat.category.field(field).type == "timestamp"
            else f"CAST({col} AS CHAR)"
        )
        # Identifiers from the checked stores file; values are parameters.
        sql = f"SELECT {text} AS v{body}{cat.order_by} LIMIT 1"
        rows = await self.fetch(sql, args)
        return None if not rows or rows[0]["v"] is None else str(rows[0]["v"])

    async def counts(self, person: Person) -> dict[str, int]:
        """How many records of each category of this store the person has: one statement."""
        args: list[Any] = []
        parts = []
        for key, cat in self.categories.items():
            body = cat.body(person, args)
            if body is not None:
                parts.append(
                    f"SELECT '{key}' AS category, COUNT(*) AS n{body}"
                )  # catalogue keys are [a-z_]; values are parameters
        if not parts:
            return {}
        rows = await self.fetch(" UNION ALL ".join(parts), args)
        return {r["category"]: int(r["n"]) for r in rows if r["n"]}
