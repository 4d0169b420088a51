"""What every store kind shares: a person's keys, a keyset position, and type compatibility.

A person is one anchor value plus the values of every other key, resolved once per request or
export. Values travel as text: each store kind casts them to its column's own type in SQL, so a
bigint id, a uuid and an e-mail address go through the same code, and an index on the column
is still used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from catalogue import Catalogue, Category
from stores.config import CategoryConfig, StoresConfig, StoresError

M = TypeVar("M")

Row = dict[str, Any]
Position = tuple[str | None, ...]  # the `order` columns of a record, as text (None: NULL)
Fields = frozenset[str]  # the catalogue fields a read asks for (None where it asks for all)
Types = Mapping[str, Mapping[str, str]]  # table -> column -> SQL type, as a store reads them


@dataclass(frozen=True, slots=True)
class Person:
    """A person's keys across systems: key name -> its values (deduplicated, as text).

    Keys are found when first needed (`Stores.ensure`), each once: a query for the profile
    never waits on the analytics system, and an export finds them all.
    """

    anchor: str
    values: dict[str, tuple[str, ...]]
    # Values of a key that lead to other people too: not used, so that nobody receives
    # records that may be someone else's (GDPR Art. 15(4)). Key name -> how many.
    shared: dict[str, int] = field(default_factory=dict)
    # Held while keys are being found, so concurrent reads find each key once.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False, repr=False)
    # Keys a page's own statement is finding, without the lock (`Stores.page_json`): done
    # when it ended, found or not. A read that needs one waits for it alone.
    pending: dict[str, asyncio.Future[None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def of(self, key: str) -> tuple[str, ...]:
        return self.values.get(key, ())

    def has_all(self, keys: tuple[str, ...]) -> bool:
        return all(self.values.get(k) for k in keys)


@dataclass(frozen=True, slots=True)
class Value:
    """A field's value in a JSON shape: the catalogue field `name`; `required`: a record whose
    value is null cannot be written in this shape."""

    name: str
    required: bool = False


# A JSON object written by the database (`PostgresStore.page_json`): its members in order, each
# (key, value), the value a field's (`Value`), a string constant (`str`) or an object inside.
Shape = tuple[tuple[str, "Value | str | Shape"], ...]


@dataclass(frozen=True, slots=True)
class JsonPage:
    """A page for the database to write as JSON (`PostgresStore.page_json`): up to `size`
    records after `after`, reading `fields` (None: all), each written as `shape`; with
    `positions`, one text a record and its position (for its cursor)."""

    size: int
    after: Position | None
    fields: Fields | None
    shape: Shape
    positions: bool = False


@dataclass(frozen=True, slots=True)
class Written:
    """A page the database wrote as JSON (`PostgresStore.page_json`): `text`, its objects
    joined with commas, or `objects`, one text each, with each record's `positions`; and
    whether more records follow."""

    text: str
    objects: list[str]
    positions: list[Position]
    more: bool


# Which stored types each catalogue field type can be read from (conversion happens in SQL).
# Names are normalised: PostgreSQL's format_type() and MySQL's DATA_TYPE, lower case, with
# any length or precision removed.
COMPATIBLE: Mapping[str, frozenset[str]] = {
    "string": frozenset(
        {
            "text",
            "character varying",
            "character",
            "varchar",
            "char",
            "citext",
            "uuid",
            "tinytext",
            "mediumtext",
            "longtext",
            "enum",
            "set",
            "inet",
            "bigint",
            "integer",
            "smallint",
            "int",
            "tinyint",
            "mediumint",
            "numeric",
            "decimal",
        }
    ),
    "integer": frozenset(
        {"bigint", "integer", "smallint", "int", "tinyint", "mediumint", "numeric", "decimal"}
    ),
    "boolean": frozenset({"boolean", "tinyint", "bit"}),
    "timestamp": frozenset(
        {
            "timestamp with time zone",
            "timestamp without time zone",
            "date",
            "timestamp",
            "datetime",
        }
    ),
    "inet": frozenset({"inet", "text", "character varying", "varchar", "char", "character"}),
    "uuid": frozenset({"uuid", "text", "character varying", "char", "varchar", "character"}),
}
COMPATIBLE = {**COMPATIBLE, "text": COMPATIBLE["string"]}


def base_type(sql_type: str) -> str:
    """`character varying(200)` -> `character varying`; `timestamp(3) with time zone` too."""
    name = sql_type.lower()
    while "(" in name:
        start = name.index("(")
        end = name.index(")", start)
        name = (name[:start] + name[end + 1 :]).replace("  ", " ")
    return name.strip()


def compatible(field_type: str, sql_type: str) -> bool:
    return base_type(sql_type) in COMPATIBLE.get(field_type, frozenset())


def tables_of(store: str, config: StoresConfig) -> set[str]:
    """The tables and views a store's sections name."""
    tables = {k.table for k in config.keys if k.store == store}
    tables |= {c.table for c in config.categories.values() if c.store == store and c.table}
    if config.search is not None and config.search.store == store:
        tables.add(config.search.table)
    return tables


def check_columns(
    store: str, types: Mapping[str, Mapping[str, str]], config: StoresConfig, catalogue: Catalogue
) -> None:
    """Every table and column the stores file names exists, with a type its field can take."""
    src = config.source

    def need(section: str, table: str, columns: Sequence[str]) -> None:
        found = types.get(table) or {}
        if not found:
            raise StoresError(f"{src}: {section}: table '{table}' not found in store '{store}'")
        for column in columns:
            if column not in found:
                raise StoresError(
                    f"{src}: {section}: column '{column}' not found in {store}.{table}"
                )

    for key in config.keys:
        if key.store == store:
            need(f"keys.{key.name}", key.table, [key.column, *(c for c, _ in key.match)])
    search = config.search
    if search is not None and search.store == store:
        need("search.email", search.table, [search.column, search.anchor])
    for cat_key, mapped in config.categories.items():
        if mapped.store != store:
            continue
        section = f"categories.{cat_key}"
        assert mapped.fields is not None
        need(section, mapped.table, [*mapped.fields.values(), *(c for c, _ in mapped.match)])
        need(section, mapped.table, mapped.order)
        for f in catalogue.category(cat_key).fields:
            column = mapped.fields[f.name]
            sql_type = types[mapped.table][column]
            if not f.withheld and not compatible(f.type, sql_type):
                raise StoresError(
                    f"{src}: {section}.fields.{f.name}: column '{column}' is {sql_type}, "
                    f"which cannot be read as {f.type}"
                )


def map_categories(
    store: str,
    types: Types,
    config: StoresConfig,
    catalogue: Catalogue,
    make: Callable[[Category, CategoryConfig, Types], M],
) -> dict[str, M]:
    """Checks a store's sections against its live schema, then builds each of its categories
    with the store kind's own SQL (`make`)."""
    check_columns(store, types, config, catalogue)
    return {
        key: make(catalogue.category(key), mapped, types)
        for key, mapped in config.categories.items()
        if mapped.store == store
    }
