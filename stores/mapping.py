"""What every store kind shares: a person's keys, a keyset position, and type compatibility.

A person is one anchor value plus the values of every other key, resolved once per request or
export. Values travel as text: each store kind casts them to its column's own type in SQL, so a
bigint id, a uuid and an e-mail address go through the same code, and an index on the column
is still used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]
Position = tuple[str, ...]  # the `order` columns of a record, as text


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

    def of(self, key: str) -> tuple[str, ...]:
        return self.values.get(key, ())

    def has_all(self, keys: tuple[str, ...]) -> bool:
        return all(self.values.get(k) for k in keys)


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
