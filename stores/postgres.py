"""A PostgreSQL store over the company's own schema: tables, columns and ids as they are.

Each category of this store is read with one parameterised statement built from its section of
the stores file: the mapped columns, aliased to the catalogue's field names and cast to the
field's type, from the mapped table, on rows whose `match` columns equal any of the person's
key values. Withheld fields (CCPA regulations §7024(d)) are never selected: the statement asks
only whether a value is held, so the value itself never leaves the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

import asyncpg
from cachetools import LRUCache

from catalogue import Catalogue, Category, Field
from stores.config import CategoryConfig, KeyConfig, Match, SearchConfig, StoresConfig
from stores.mapping import (
    Fields,
    JsonPage,
    Person,
    Position,
    Row,
    Shape,
    Types,
    Written,
    map_categories,
    tables_of,
)
from stores.pool import SNAPSHOTS, create_pool, ping

# The SQL type each catalogue field type is converted to.
CASTS = {
    "string": "text",
    "text": "text",
    "integer": "bigint",
    "boolean": "boolean",
    "timestamp": "timestamptz",
    "uuid": "uuid",
}


def quote(ident: str) -> str:
    # Identifiers come from the validated stores file (plain names only); quoted anyway.
    return '"' + ident.replace('"', '""') + '"'


def quote_table(table: str) -> str:
    return ".".join(quote(part) for part in table.split("."))


def field_sql(f: Field, column: str, alias: str = "t") -> str:
    col = f"{alias}.{quote(column)}"
    if f.withheld:
        return f"({col} IS NOT NULL) AS {quote(f.name + '_held')}"
    if f.type == "inet":
        return f"host({col}::inet) AS {quote(f.name)}"
    return f"{col}::{CASTS[f.type]} AS {quote(f.name)}"


# Shapes kept per category (`MappedCategory.shape_sql`): a shape is a planned document's, and
# the documents a process plans are kept in a bounded cache too.
SHAPES_KEPT = 256
# The statement texts a category keeps (`MappedCategory._texts`), in characters: a few kinds of
# read (pages of a few sizes, with and without a position, a record, an export) per planned
# document, 1 to 17 kB each (a merged read of 32 values of a category of 8 fields).
TEXTS_KEPT = 1 << 20
# The columns a statement of `PostgresStore.singles` may have: PostgreSQL's bound on a select
# list is 1664 entries.
SELECT_COLUMNS = 1600


class NotInShape(Exception):
    """A record of this page cannot be written in the JSON shape asked for."""


_INT32 = "NOT BETWEEN -2147483648 AND 2147483647"  # GraphQL's Int
_UTC = "({col} AT TIME ZONE 'UTC')"
# Each catalogue type's value (a column as `field_sql` reads it) as JSON text, exactly as
# orjson writes the Python value asyncpg decodes it to (the planner's tests compare the two),
# and when a value cannot be written so. Times: `isoformat()` of a UTC datetime, microseconds
# only where there are any; years outside 1 to 9999 have no Python datetime.
_JSON: dict[str, tuple[str, str | None]] = {
    "string": ("to_json({col})::text", None),
    "text": ("to_json({col})::text", None),
    "inet": ("to_json({col})::text", None),
    "integer": ("{col}::text", "{col} " + _INT32),
    "boolean": ("{col}::text", None),
    "uuid": ("'\"' || {col}::text || '\"'", None),
    "timestamp": (
        # isoformat() leaves microseconds out where they are all 0 and writes all six where
        # they are not. A whole second (most times a company keeps) is to_json's ISO text of
        # the UTC time, its offset added: to_char costs seven times as much a value. With the
        # check below, a page of 100 events costs PostgreSQL 0.15 ms less CPU (720 to 573 us).
        # An offset is whole seconds: whether a time has a fraction is the same in any zone.
        f"CASE WHEN date_trunc('second', {{col}}) = {{col}} "
        f"THEN left(to_json({_UTC})::text, -1) || '+00:00\"' "
        f"ELSE '\"' || to_char({_UTC}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00\"' END",
        # Compared as the timestamptz it is (no conversion a row); infinities fall outside.
        "{col} < '0001-01-01 00:00:00+00' OR {col} >= '10000-01-01 00:00:00+00'",
    ),
}
_GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_TEXT = re.compile(r"text|character varying(\([0-9]+\))?")  # format_type()'s, not arrays


def _literal(json_text: str) -> str:
    """A JSON fragment made of GraphQL names as an SQL string literal (no quote or backslash
    can be in it, so `standard_conforming_strings` does not matter)."""
    assert "'" not in json_text and "\\" not in json_text, json_text
    return f"'{json_text}'::text"


def json_shape(shape: Shape, category: Category) -> tuple[str, str]:
    """SQL writing a row of `page_sql` (alias `p`) as the JSON object `shape`, and SQL true
    where a row cannot be written so."""
    refused: list[str] = []

    def obj(members: Shape) -> str:
        if not members:
            return "'{}'::text"  # every field skipped (`@skip`): an empty object
        parts = []
        for n, (key, value) in enumerate(members):
            if _GRAPHQL_NAME.fullmatch(key) is None:
                raise ValueError(f"not a GraphQL name: {key!r}")
            lead = ("{" if n == 0 else ",") + f'"{key}":'
            head = _literal(lead)
            if isinstance(value, str):
                if _GRAPHQL_NAME.fullmatch(value) is None:
                    raise ValueError(f"not a GraphQL name: {value!r}")
                parts.append(_literal(f'{lead}"{value}"'))
                continue
            if isinstance(value, tuple):
                parts += [head, obj(value)]
                continue
            f = category.field(value.name)
            if f.withheld:
                raise ValueError(f"withheld: {value.name}")
            col = f"p.{quote(f.name)}"
            text, bad = _JSON[f.type]
            if bad is not None:
                refused.append(bad.format(col=col))
            if value.required:
                refused.append(f"{col} IS NULL")
            parts += [head, f"coalesce({text.format(col=col)}, 'null')"]
        return "(" + " || ".join([*parts, "'}'::text"]) + ")"

    written = obj(shape)
    return written, " OR ".join(f"({r})" for r in refused) or "false"


_INTEGER = re.compile(r"[-+]?[0-9]{1,40}")  # leading zeros allowed; the range is checked apart
_UUID = re.compile(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")


def _whole(bits: int) -> Callable[[str], bool]:
    """A value of a signed integer column of `bits` bits: its digits, and within its range
    (`9999999999999999999` has the shape of a bigint but not its size)."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def fits(value: str) -> bool:
        return _INTEGER.fullmatch(value) is not None and low <= int(value) <= high

    return fits


# Values a column of these types cannot hold are dropped before the cast: one odd value (a
# legacy id in a uuid column) must not fail the whole read, nor put itself in an error.
_FITS: dict[str, Callable[[str], object]] = {
    "smallint": _whole(16),
    "integer": _whole(32),
    "bigint": _whole(64),
    "uuid": _UUID.fullmatch,
}


def fitting(kind: str, values: Sequence[str]) -> list[str]:
    check = _FITS.get(kind)
    clean = [v for v in values if "\x00" not in v]
    return clean if check is None else [v for v in clean if check(v)]


# Up to this many values of its first `match` key, a person's records are read one index walk
# per value, merged (`MappedCategory.records_sql`); past it, with one `= any(...)` and a sort.
# Each value is a branch of the statement: its text, and the planner's work, grow with them.
MERGED_VALUES = 32


def exact(col: str) -> str:
    """`col` as text compared byte for byte: `::text` keeps a column's collation, and a
    nondeterministic one (an ICU collation ignoring case, common on e-mail columns) would make
    the guard below as forgiving as the comparison it guards."""
    return f'({col}::text COLLATE "C")'


class Where:
    """`match` as SQL: each column equal to any of the person's values of its key.

    Values arrive as text and are cast to the column's own type, so its index is used; the
    column's own text must then equal one of them too, so a cast that folds values together
    (varchar(n) truncating, numeric rounding, citext or a case-blind collation ignoring case)
    never lets one person's value reach another's rows.
    """

    def __init__(self, types: Types, table: str, match: Match, alias: str = "t") -> None:
        self.table_types = types[table]
        self.match = match
        self.alias = alias

    def sql(self, person: Person, args: list[Any]) -> str:
        start = len(args)
        args.extend(self.values(person))
        return self.text(start)

    def values(self, person: Person) -> list[list[str]]:
        """The statement's values, one text array per `match` column, in order."""
        return [fitting(self.table_types[column], person.of(key)) for column, key in self.match]

    def text(self, start: int) -> str:
        """The condition, its values the parameters after the first `start`."""
        parts = []
        for n, (column, _) in enumerate(self.match, start + 1):
            kind = self.table_types[column]
            col = f"{self.alias}.{quote(column)}"
            parts.append(
                f"{col} = any(${n}::text[]::{kind}[]) AND {exact(col)} = any(${n}::text[])"
            )
        return " AND ".join(parts)


class MappedCategory:
    """One category of this store: the SQL for its records, built once at start-up."""

    def __init__(self, category: Category, mapped: CategoryConfig, types: Types) -> None:
        self.category = category
        self.mapped = mapped
        self.table = quote_table(mapped.table)
        self.where = Where(types, mapped.table, mapped.match)
        # The `match` columns after the first: a merged statement's branch, or a page's, holds
        # the first column's condition itself and these as `Where` writes them.
        self.rest = Where(types, mapped.table, mapped.match[1:])
        self.types = types
        self.table_types = types[mapped.table]
        self.keys = tuple(key for _, key in mapped.match)
        table_types = types[mapped.table]
        self.order_types = tuple(table_types[c] for c in mapped.order)
        self.order_by = ", ".join(f"t.{quote(c)}" for c in mapped.order)
        self.select = ", ".join(field_sql(f, mapped.column(f.name)) for f in category.fields)
        time = category.time_field
        self.time_column = mapped.column(time) if time else None
        # The order columns carried inside a merged statement (`__o0`, …) and its merge order.
        self.hidden = "".join(f", t.{quote(c)} AS __o{i}" for i, c in enumerate(mapped.order))
        self.merged = ", ".join(f"r.__o{i}" for i in range(len(mapped.order)))
        # `json_shape` of the shapes asked for lately: a planned document asks for the same
        # one at every request (0.2 ms of a `me` query's 3.3 ms of CPU, built each time).
        self._shapes: LRUCache[Shape, tuple[str, str]] = LRUCache(SHAPES_KEPT)
        # The texts of `records_sql` and `page_sql` built lately, by everything a text depends
        # on (never a value: those are parameters). A `me` query's eleven texts were built
        # again at every request: 9.5 us each, 2.2 us with the text kept (its values alone).
        self._texts: LRUCache[tuple[Any, ...], str] = LRUCache(TEXTS_KEPT, getsizeof=len)

    def shape_sql(self, shape: Shape) -> tuple[str, str]:
        """`json_shape(shape, self.category)`, kept for the next request."""
        found = self._shapes.get(shape)
        if found is None:
            found = self._shapes[shape] = json_shape(shape, self.category)
        return found

    def column(self, field: str) -> str:
        return f"t.{quote(self.mapped.column(field))}"

    def fields_of(self, fields: Fields | None) -> list[Field]:
        """The fields of `fields` alone (catalogue names, in the catalogue's order), or every
        field (None, or no field of this category)."""
        chosen = [f for f in self.category.fields if f.name in fields] if fields else []
        return chosen or list(self.category.fields)

    def columns_of(self, fields: Fields | None) -> list[str]:
        """The names of `select_of(fields)`'s columns, in order."""
        return [f.name + "_held" if f.withheld else f.name for f in self.fields_of(fields)]

    def names_of(self, fields: Fields | None) -> str:
        """The output columns of `select_of(fields)`, as a merged statement selects them."""
        return ", ".join(f"r.{quote(c)}" for c in self.columns_of(fields))

    def select_of(self, fields: Fields | None) -> str:
        """The select list of `fields_of(fields)`."""
        if not fields:
            return self.select
        return ", ".join(field_sql(f, self.mapped.column(f.name)) for f in self.fields_of(fields))

    def records_sql(
        self, person: Person, args: list[Any], since: Any = None, fields: Fields | None = None
    ) -> str:
        """The person's records, mapped and in order: the body of every read and export.

        With `order` and from 1 to MERGED_VALUES values of the first `match` key, the records
        are read value by value and merged (`_merged_sql`); otherwise as `any_sql` reads them.
        Both give the same rows in the same order.
        """
        column, key = self.mapped.match[0]
        values = list(dict.fromkeys(fitting(self.table_types[column], person.of(key))))
        if self.order_by and 0 < len(values) <= MERGED_VALUES:
            dated = since is not None and self.time_column is not None
            start = len(args)
            text = self._text(
                ("merged", start, len(values), dated, fields),
                lambda: self._merged_sql(start, len(values), dated, fields),
            )
            args.extend(self.rest.values(person))
            if dated:
                args.append(since)
            args.extend(values)
            return text
        return self.any_sql(person, args, since, fields)

    def _text(self, key: tuple[Any, ...], build: Callable[[], str]) -> str:
        """The text `build` gives for `key`, built once while it is kept."""
        found = self._texts.get(key)
        if found is None:
            found = build()
            with suppress(ValueError):  # larger than the whole bound: not kept
                self._texts[key] = found
        return found

    def any_sql(
        self, person: Person, args: list[Any], since: Any = None, fields: Fields | None = None
    ) -> str:
        """The person's records with one `= any(...)` per `match` column, sorted when there
        is an `order`: no order to keep, no values, or more than MERGED_VALUES of them."""
        dated = since is not None and self.time_column is not None
        start = len(args)
        args.extend(self.where.values(person))
        if dated:
            args.append(since)
        return self._text(
            ("any", start, dated, fields), lambda: self._any_text(start, dated, fields)
        )

    def _any_text(self, start: int, dated: bool, fields: Fields | None) -> str:
        where = self.where.text(start)
        if dated:
            where += (
                f" AND t.{quote(self.time_column or '')} > ${start + len(self.mapped.match) + 1}"
            )
        order = f" ORDER BY {self.order_by}" if self.order_by else ""
        return f"SELECT {self.select_of(fields)} FROM {self.table} t WHERE {where}{order}"  # noqa: S608  # identifiers from the checked stores file; values are parameters

    def _merged_sql(self, start: int, values: int, dated: bool, fields: Fields | None) -> str:
        """The records as one ordered branch per value of the first `match` key, in UNION ALL
        under the same ORDER BY: PostgreSQL merges the branches (Merge Append), each an index
        walk in order, and sends the first row at once. Its parameters after the first
        `start`: the rest of `match` (`self.rest`), the time after which (`dated`), then the
        `values` values of the first key, one each.

        `col = any(<values>) ORDER BY <order>` is a scan and a sort for a person with a large
        share of a table (1.2 s and 106 MB of temporary files before the first of a million
        rows, and a sort cannot be paced by its reader); `unnest(...)` with
        LATERAL, as `page_sql` reads, leaves a sort above the nested loop. The merge takes
        index walks only where they cost less than the scan and sort: the export's snapshot
        prices random reads as on a cached or solid-state database (`stores.streams`
        SNAPSHOT_SETTINGS); under the default price the two are close for a person with a
        large share of a table, and the planner may scan and sort each branch.

        Each branch keeps `Where`'s guard: `col = v::kind AND col::text = v`, so a cast that
        folds values never reaches another person's rows. The guard also means a row belongs
        to one branch only: its column has one text, equal to at most one of the distinct
        values, so no row is read twice. The rest of `match`, and `since`, are in every
        branch; the hidden `__o` order columns stay inside the statement.
        """
        column = self.mapped.match[0][0]
        kind = self.table_types[column]
        col = f"t.{quote(column)}"
        extra = ""
        n = start
        if self.rest.match:
            extra += " AND " + self.rest.text(n)
            n += len(self.rest.match)
        if dated:
            n += 1
            extra += f" AND t.{quote(self.time_column or '')} > ${n}"
        select = self.select_of(fields)
        branches = [
            f"(SELECT {select}{self.hidden} FROM {self.table} t "  # noqa: S608  # identifiers from the checked stores file; values are parameters
            f"WHERE {col} = ${v}::text::{kind} AND {exact(col)} = ${v}::text{extra} "
            f"ORDER BY {self.order_by})"
            for v in range(n + 1, n + values + 1)
        ]
        return (
            f"SELECT {self.names_of(fields)} FROM ({' UNION ALL '.join(branches)}) AS r "  # noqa: S608  # built from checked identifiers only
            f"ORDER BY {self.merged}"
        )

    def page_sql(
        self,
        person: Person,
        args: list[Any],
        limit: int,
        after: Position | None,
        fields: Fields | None = None,
        *,
        ordered: bool = False,
        marks: bool = True,
        first_values: str | None = None,
    ) -> str:
        """A page in `order`, read value by value of the first `match` key and merged.
        `ordered`: each row's `__o` order columns too (for `page_json`); `marks`: its `_pos`;
        `first_values`: SQL giving that key's values (a text array) in place of the person's.

        With `col = any(<several values>)` PostgreSQL cannot take the order from the
        (col, time, id) index: it reads and sorts all of the person's records for each page
        (1.5 s for a million events). One index walk per value, each stopping at `limit`,
        then a merge of at most `values * limit` rows, answers in a fraction of a millisecond.
        """
        (column, key) = self.mapped.match[0]
        start = len(args)
        if first_values is None:
            args.append(fitting(self.table_types[column], person.of(key)))
        args.extend(self.rest.values(person))
        nulls = None if after is None else tuple(v is None for v in after)
        if after is not None:
            args.extend(v for v in after if v is not None)
        limit = int(limit)
        return self._text(
            ("page", start, limit, nulls, fields, ordered, marks, first_values),
            lambda: self._page_text(start, limit, nulls, fields, ordered, marks, first_values),
        )

    def _page_text(
        self,
        start: int,
        limit: int,
        nulls: tuple[bool, ...] | None,
        fields: Fields | None,
        ordered: bool,
        marks: bool,
        first_values: str | None,
    ) -> str:
        """`page_sql`'s text, its parameters after the first `start`: the first key's values
        (unless `first_values`), the rest of `match`, then the position's values that are not
        NULL (`nulls`: which are; None, no position)."""
        column = self.mapped.match[0][0]
        kind = self.table_types[column]
        n = start
        if first_values is None:
            n += 1
            first_values = f"${n}::text[]"
        col = f"t.{quote(column)}"
        where = f"{col} = k.v::{kind} AND {exact(col)} = k.v"
        if self.rest.match:
            where += " AND " + self.rest.text(n)
            n += len(self.rest.match)
        positions = ", ".join(f"t.{quote(c)}::text" for c in self.mapped.order)
        branches: list[list[str]] = [[]]
        if nulls is not None:
            params: list[str | None] = []
            for null, kind in zip(nulls, self.order_types, strict=True):
                if null:
                    params.append(None)
                else:
                    n += 1
                    params.append(f"${n}::text::{kind}")
            branches = after_position([f"t.{quote(c)}" for c in self.mapped.order], params)
        # The limit is written in, not passed: with `LIMIT $n` PostgreSQL prices the plan it
        # could keep for a tenth of the rows, far above the ones it makes for each call's
        # values, and plans the statement again at every call (an events page finding its
        # cookie ids: 0.83-0.91 ms a call, 0.61-0.65 ms with the plan kept after five calls;
        # tests/stores/test_plans.py). A few sizes of page, so a few statements to prepare.
        pos = f", ARRAY[{positions}] AS _pos" if positions and marks else ""
        order = f" ORDER BY {self.order_by}" if self.order_by else ""
        select = self.select_of(fields)
        inner = " UNION ALL ".join(
            f"(SELECT {select}{pos}{self.hidden} FROM {self.table} t "  # noqa: S608  # identifiers from the checked stores file; values are parameters
            f"WHERE {' AND '.join([where, *conditions])}{order} LIMIT {limit})"
            for conditions in branches
        )
        # The hidden `__o` order columns stay inside the statement: sent, they were two more
        # values per row to decode (a timestamp and an id), only to be thrown away.
        shown = (", r._pos" if pos else "") + (
            f", {self.merged}" if ordered and self.merged else ""
        )
        return (
            f"SELECT {self.names_of(fields)}{shown} "  # noqa: S608  # built from checked identifiers only
            f"FROM unnest({first_values}) AS k(v), LATERAL ({inner}) r"
            + (f" ORDER BY {self.merged}" if self.merged else "")
            + f" LIMIT {limit}"
        )


# A page finding its first key in its own statement (`_resolve_sql` as `found`): the values of
# that key no other person's rows carry, and every value found, for `_found`.
_FOUND_FIRST = "ARRAY(SELECT f.v FROM found f WHERE f.k = 0 AND NOT f.shared)"
_FOUND_ROWS = (
    "(SELECT array_agg(ARRAY[f.k::text, f.v, f.shared::text] ORDER BY f.k, f.v) FROM found f)"
)


def _page_at(row: asyncpg.Record, at: int, key: str, asked: JsonPage) -> Written:
    """The page whose three columns (`_page_json_parts`) start at `at` in `row`: its text, or
    its records and their positions. Raises `NotInShape` where a record shown cannot be
    written so."""
    text, count, refused_any = row[at], row[at + 1], row[at + 2]
    if refused_any:
        raise NotInShape(key)
    more = count > asked.size
    if asked.positions:
        records = text or []
        return Written("", [r[0] for r in records], [tuple(r[1:]) for r in records], more)
    return Written(text or "", [], [], more)


def _found_at(
    row: asyncpg.Record, at: int, resolve: Sequence[KeyConfig]
) -> list[tuple[list[str], int]]:
    """The keys `resolve` found (`_FOUND_ROWS`, at `at` in `row`); none without them."""
    rows = (row[at] or ()) if resolve else ()
    return _found(len(resolve), [(int(k), v, shared == "true") for k, v, shared in rows])


def _found(keys: int, rows: Sequence[tuple[int, str, bool]]) -> list[tuple[list[str], int]]:
    """Each key's values from `_resolve_sql`'s rows (in order), and how many were left out."""
    out: list[tuple[list[str], int]] = [([], 0) for _ in range(keys)]
    for k, v, shared in rows:
        found, left_out = out[k]
        if shared:
            out[k] = (found, left_out + 1)
        else:
            found.append(v)
    return out


def after_position(columns: list[str], values: list[str | None]) -> list[list[str]]:
    """The records after a position, as branches (each a list of conditions, ANDed) that
    together hold every record after it once, each an index walk in order.

    PostgreSQL's order puts NULLs last, and a row comparison with a NULL is never true: with
    `(time, id) > (t, i)` alone, records without a time (a nullable column, or a view's) are
    never reached by paging though the export holds them. So: up to the first NULL of the
    position, the row comparison; past each of its non-NULL values, the records with a NULL
    there; and at a NULL of the position, the records with a NULL there too, after the rest.
    """
    k = next((i for i, v in enumerate(values) if v is None), len(values))
    known = [v for v in values[:k] if v is not None]  # all of them, up to the first NULL
    same = [f"{c} = {v}" for c, v in zip(columns[:k], known, strict=True)]
    branches = []
    if k:
        branches.append([f"({', '.join(columns[:k])}) > ({', '.join(known)})"])
    branches += [[*same[:i], f"{columns[i]} IS NULL"] for i in range(k)]
    if k < len(values):
        at_null = [*same, f"{columns[k]} IS NULL"]
        branches += [
            [*at_null, *rest] for rest in after_position(columns[k + 1 :], values[k + 1 :])
        ]
    return branches


class PostgresStore:
    kind = "postgres"

    def __init__(
        self, name: str, pool: asyncpg.Pool, types: Types, snapshots: asyncpg.Pool | None = None
    ) -> None:
        self.name = name
        self.pool = pool
        # Exports' snapshots take their connections here, never from `pool` (stores/pool.py).
        self.snapshots = pool if snapshots is None else snapshots
        self.types = types
        self.categories: dict[str, MappedCategory] = {}
        # Statements sent, for /metrics and for tests that bound the queries of a request.
        self.statements = 0
        # The parameters' types of each COPY's query text (stores/streams.py, `inline`).
        self.parameter_types: LRUCache[str, tuple[str, ...]] = LRUCache(maxsize=256)

    @classmethod
    async def open(
        cls,
        name: str,
        dsn: str,
        config: StoresConfig,
        catalogue: Catalogue,
        snapshots: int = SNAPSHOTS,
    ) -> PostgresStore:
        pool = await create_pool(dsn, read_only=True)
        exports = None
        try:
            # Two a turn: an export's snapshot, and the one beside it that reads its web
            # pages while its data file streams (`stores.streams.Snapshot.beside`).
            exports = await create_pool(
                dsn, min_size=0, max_size=2 * snapshots, read_only=True, exports=True
            )
            types = await introspect(pool, tables_of(name, config))
            store = cls(name, pool, types, exports)
            store.map(config, catalogue)
        except BaseException:
            if exports is not None:
                await exports.close()
            await pool.close()
            raise
        return store

    def map(self, config: StoresConfig, catalogue: Catalogue) -> None:
        """Checks every section of this store against the live schema; builds its SQL."""
        self.categories = map_categories(self.name, self.types, config, catalogue, MappedCategory)

    async def close(self) -> None:
        if self.snapshots is not self.pool:
            await self.snapshots.close()
        await self.pool.close()

    async def ping(self) -> bool:
        return await ping(self.pool)

    async def resolve(self, key: KeyConfig, person: Person) -> tuple[list[str], int]:
        """The values of `key` for a person whose earlier keys are known, and how many values
        were left out because other people's rows carry them too."""
        return (await self.resolve_all([key], person))[0]

    async def resolve_all(
        self, keys: Sequence[KeyConfig], person: Person
    ) -> list[tuple[list[str], int]]:
        """`resolve` of each key, in one statement (keys of one table, found the same way,
        such as a user's e-mail address and billing id: one round trip instead of one each)."""
        args: list[Any] = []
        sql = self._resolve_sql(keys, person, args)
        self.statements += 1
        rows = await self.pool.fetch(f"{sql} ORDER BY k, v", *args)
        return _found(len(keys), [(r["k"], r["v"], r["shared"]) for r in rows])

    def _resolve_sql(self, keys: Sequence[KeyConfig], person: Person, args: list[Any]) -> str:
        """Rows (k, v, shared): each value `v` of `keys[k]`, and whether other people's rows
        carry it too. Needs the person's values of every key the keys match on (in `args`)."""
        branches = []
        for n, key in enumerate(keys):
            mine = Where(self.types, key.table, key.match, "t").sql(person, args)
            others = Where(self.types, key.table, key.match, "o").sql(person, args)
            col, table = quote(key.column), quote_table(key.table)
            branches.append(
                f"SELECT {n} AS k, m.v::text AS v, EXISTS (SELECT 1 FROM {table} o "  # noqa: S608  # identifiers from the checked stores file; values are parameters
                f"WHERE o.{col} = m.v AND NOT ({others})) AS shared "
                f"FROM (SELECT DISTINCT t.{col} AS v FROM {table} t WHERE {mine} "
                f"AND t.{col} IS NOT NULL) m"
            )
        return " UNION ALL ".join(branches)

    async def anchor_value(self, key: KeyConfig, value: str) -> str | None:
        """The anchor value as stored (`01001` names user 1001), or None if none is."""
        kind = self.types[key.table][key.column]
        col = quote(key.column)
        sql = (
            f"SELECT {col}::text FROM {quote_table(key.table)} "  # noqa: S608  # identifiers from the checked stores file; the value is a parameter
            f"WHERE {col} = $1::text::{kind} LIMIT 1"
        )
        if not fitting(kind, [value]):
            return None  # not a value of the anchor's type (e.g. letters for an integer id)
        self.statements += 1
        try:
            found = await self.pool.fetchval(sql, value)
        except (asyncpg.DataError, asyncpg.exceptions.CharacterNotInRepertoireError):
            return None  # not a value of the anchor's type, in a way only the server can tell
        return found if isinstance(found, str) else None

    async def search(self, search: SearchConfig, email: str, limit: int) -> list[str]:
        sql = (
            f"SELECT DISTINCT {quote(search.anchor)}::text AS a FROM {quote_table(search.table)} "  # noqa: S608  # identifiers from the checked stores file; values are parameters
            f"WHERE lower({quote(search.column)}) = lower($1) ORDER BY 1 LIMIT $2"
        )
        self.statements += 1
        return [r["a"] for r in await self.pool.fetch(sql, email.strip(), limit)]

    async def single(self, key: str, person: Person, fields: Fields | None = None) -> Row | None:
        cat = self.categories[key]
        if not person.has_all(cat.keys):
            return None
        args: list[Any] = []
        sql = cat.records_sql(person, args, fields=fields) + " LIMIT 1"
        self.statements += 1
        row = await self.pool.fetchrow(sql, *args)
        return None if row is None else dict(row)

    async def singles(
        self, asked: Sequence[tuple[str, Fields | None]], person: Person
    ) -> list[Row | None]:
        """`_singles` of as many reads at a time as fit PostgreSQL's bound on a statement's
        columns (1664): a store of many wide categories, or one asked for under many aliases
        with other fields, takes a statement more rather than failing."""
        out: list[Row | None] = []
        batch: list[tuple[str, Fields | None]] = []
        width = 1  # the row's own column
        for key, fields in asked:
            columns = len(self.categories[key].fields_of(fields)) + 1  # and its marker
            if batch and width + columns > SELECT_COLUMNS:
                out += await self._singles(batch, person)
                batch, width = [], 1
            batch.append((key, fields))
            width += columns
        return out + await self._singles(batch, person)

    async def _singles(
        self, asked: Sequence[tuple[str, Fields | None]], person: Person
    ) -> list[Row | None]:
        """`single` of each (category, fields), in one statement: each read a LATERAL
        subquery of one row at most, its columns renamed by their place (`0.1`: the second
        column of the first read) and a marker column telling a record from none. A `me`
        query asks for three records of a company's app: one round trip instead of three
        (each costs the server a write, a wake-up and a read; under load, a third of its CPU
        was in asyncpg's `_do_execute`)."""
        args: list[Any] = []
        parts: list[str] = []
        columns: list[list[str] | None] = []
        for n, (key, fields) in enumerate(asked):
            cat = self.categories[key]
            if not person.has_all(cat.keys):
                columns.append(None)
                continue
            names = cat.columns_of(fields)
            renamed = "".join(f", q.{quote(c)} AS {quote(f'{n}.{i}')}" for i, c in enumerate(names))
            records = cat.records_sql(person, args, fields=fields)
            parts.append(
                f"LEFT JOIN LATERAL (SELECT true AS {quote(f'{n}.')}{renamed} "  # noqa: S608  # identifiers from the checked stores file; values are parameters
                f"FROM ({records} LIMIT 1) q) s{n} ON true"
            )
            columns.append(names)
        if not parts:
            return [None] * len(asked)
        self.statements += 1
        sql = f"SELECT * FROM (VALUES (0)) one(x) {' '.join(parts)}"  # noqa: S608  # built above
        row = await self.pool.fetchrow(sql, *args)
        assert row is not None  # one row: every read is LEFT JOINed to it
        out: list[Row | None] = []
        for n, read in enumerate(columns):
            if read is None or row[f"{n}."] is None:
                out.append(None)
            else:
                out.append({c: row[f"{n}.{i}"] for i, c in enumerate(read)})
        return out

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
        if not person.has_all(cat.keys):
            return []
        args: list[Any] = []
        sql = cat.page_sql(person, args, limit, after, fields)
        self.statements += 1
        records = await self.pool.fetch(sql, *args)
        if not records:
            return []
        names = list(records[0].keys())
        # Every record has these columns (one statement): zip without `strict`, whose check
        # per row cost as much as the rest of building it.
        rows = [dict(zip(names, r)) for r in records]  # noqa: B905  # same length, see above
        for row in rows:
            row["_pos"] = tuple(row.get("_pos") or ())
        return rows

    async def page_json(
        self, key: str, person: Person, asked: JsonPage, resolve: Sequence[KeyConfig] = ()
    ) -> tuple[Written, list[tuple[list[str], int]]]:
        """Up to `asked.size` records after `asked.after`, as `page` reads them, each written
        by PostgreSQL as the JSON object `asked.shape` describes: joined with commas (a JSON
        array's inside), or with `asked.positions` one text each, with each record's position
        (for its cursor). Raises `NotInShape` where a record shown cannot be written so (a
        null where a value is required, an integer past 32 bits, a time out of range): the
        caller reads the page as rows instead.

        `resolve`: keys of this store to find in the same statement (`resolves_here`), the
        first of them the one the category's first `match` column takes; their values come
        back as `resolve_all` gives them, and only those no other person's rows carry are read.
        """
        cat = self.categories[key]
        if not resolve and not person.has_all(cat.keys):
            return Written("", [], [], False), []
        args: list[Any] = []
        sql = self.page_json_sql(key, person, asked, resolve, args)
        self.statements += 1
        row = await self.pool.fetchrow(sql, *args)
        assert row is not None  # an aggregate: one row
        return _page_at(row, 0, key, asked), _found_at(row, 3, resolve)

    def page_json_sql(
        self,
        key: str,
        person: Person,
        asked: JsonPage,
        resolve: Sequence[KeyConfig],
        args: list[Any],
    ) -> str:
        """`page_json`'s statement (its values appended to `args`): one row of the page's
        text (or records), how many were read, whether a record shown cannot be written,
        and, with `resolve`, the keys' values found."""
        first_values = None
        if resolve:
            found = self._resolve_sql(resolve, person, args)
            first_values = _FOUND_FIRST
        select, page = self._page_json_parts(key, person, asked, args, first_values)
        if resolve:
            select = f"WITH found AS MATERIALIZED ({found}) {select}, {_FOUND_ROWS}"
        return f"{select} FROM ({page}) p"

    def _page_json_parts(
        self,
        key: str,
        person: Person,
        asked: JsonPage,
        args: list[Any],
        first_values: str | None,
    ) -> tuple[str, str]:
        """The select list of a page written as JSON (text or records, how many were read,
        whether a record shown cannot be written), and the page it reads (`p`)."""
        cat = self.categories[key]
        size, positions = asked.size, asked.positions
        page = cat.page_sql(
            person,
            args,
            size + 1,
            asked.after,
            asked.fields,
            ordered=True,
            marks=positions,
            first_values=first_values,
        )
        written, refused = cat.shape_sql(asked.shape)
        hidden = ", ".join(f"p.__o{i}" for i in range(len(cat.mapped.order)))
        order = f" ORDER BY {hidden}" if hidden else ""
        # Only the records shown: the one more read to tell whether more follow is not.
        shown = f"[1:{int(size)}]"  # a number, as page_sql's limit
        select = (
            # Each record as one array, its text then its position: one sort keeps them together.
            f"SELECT (array_agg(ARRAY[{written}] || p._pos{order})){shown}"
            if positions
            else f"SELECT array_to_string((array_agg({written}{order})){shown}, ',')"
        ) + f", count(*)::int, coalesce(true = ANY((array_agg(({refused}){order})){shown}), false)"
        return select, page

    async def pages_json(
        self,
        asked: Sequence[tuple[str, JsonPage]],
        person: Person,
        resolve: Sequence[KeyConfig] = (),
    ) -> tuple[list[Written], list[tuple[list[str], int]]]:
        """`page_json` of each (category, page) in one statement: each page a subquery of one
        row, side by side, and with `resolve` the keys found once for all of them (each
        category's first `match` key is `resolve[0]`: `Stores.pages_json`). A `me` query reads
        three pages of a company's analytics: one round trip instead of three. Raises
        `NotInShape` where any record shown cannot be written so."""
        args: list[Any] = []
        first_values = None
        if resolve:
            found = self._resolve_sql(resolve, person, args)
            first_values = _FOUND_FIRST
        parts: list[str] = []
        read: list[bool] = []
        for key, page in asked:
            read.append(bool(resolve) or person.has_all(self.categories[key].keys))
            if read[-1]:
                select, rows = self._page_json_parts(key, person, page, args, first_values)
                parts.append(f"({select} FROM ({rows}) p) p{len(parts)}")
        if not parts:
            return [Written("", [], [], False) for _ in asked], []
        sql = f"SELECT * FROM {' CROSS JOIN '.join(parts)}"  # noqa: S608  # built above
        if resolve:
            found_rows = f"(SELECT {_FOUND_ROWS}) r"
            sql = f"WITH found AS MATERIALIZED ({found}) {sql} CROSS JOIN {found_rows}"
        self.statements += 1
        row = await self.pool.fetchrow(sql, *args)
        assert row is not None  # aggregates, side by side: one row
        out: list[Written] = []
        at = 0  # the next page's first column
        for (key, page), was_read in zip(asked, read, strict=True):
            if not was_read:
                out.append(Written("", [], [], False))
                continue
            out.append(_page_at(row, at, key, page))
            at += 3
        return out, _found_at(row, at, resolve)

    def resolves_here(self, key: str) -> bool:
        """Whether `page_json` may find the values of this category's first `match` key in
        its own statement: the column is text, so every value found fits it (a value of
        another type may not, and `fitting` leaves those out before the cast)."""
        column = self.categories[key].mapped.match[0][0]
        kind = self.categories[key].table_types[column]
        return _TEXT.fullmatch(kind) is not None

    async def value(self, key: str, field: str, person: Person, record: str | None) -> str | None:
        """One field of one record as text; `record` is the record's `id` field, where the
        category has many records."""
        cat = self.categories[key]
        if not person.has_all(cat.keys):
            return None
        args: list[Any] = []
        where = cat.where.sql(person, args)
        f = cat.category.field(field)
        col = cat.column(field)
        value_sql = f"host({col}::inet)" if f.type == "inet" else f"{col}::text"
        if record is not None:
            args.append(record)
            where += f" AND {exact(cat.column('id'))} = ${len(args)}"
        order = f" ORDER BY {cat.order_by}" if cat.order_by else ""
        sql = f"SELECT {value_sql} FROM {cat.table} t WHERE {where}{order} LIMIT 1"  # noqa: S608  # identifiers from the checked stores file; values are parameters
        self.statements += 1
        value = await self.pool.fetchval(sql, *args)
        return None if value is None else str(value)

    async def counts(self, person: Person) -> dict[str, int]:
        """How many records of each category of this store the person has: one statement."""
        args: list[Any] = []
        parts = []
        for key, cat in self.categories.items():
            if not person.has_all(cat.keys):
                continue
            where = cat.where.sql(person, args)
            parts.append(
                f"SELECT '{key}' AS category, count(*) AS n FROM {cat.table} t WHERE {where}"  # noqa: S608  # catalogue keys are [a-z_]; values are parameters
            )
        if not parts:
            return {}
        self.statements += 1
        rows = await self.pool.fetch(" UNION ALL ".join(parts), *args)
        return {r["category"]: r["n"] for r in rows if r["n"]}


async def introspect(pool: asyncpg.Pool, tables: set[str]) -> dict[str, dict[str, str]]:
    """Each table's columns and their types; a table that does not exist has none."""
    out: dict[str, dict[str, str]] = {}
    for table in sorted(tables):
        rows = await pool.fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type "
            "FROM pg_attribute a WHERE a.attrelid = to_regclass($1) "
            "AND a.attnum > 0 AND NOT a.attisdropped",
            quote_table(table),
        )
        out[table] = {r["attname"]: r["type"] for r in rows}
    return out
