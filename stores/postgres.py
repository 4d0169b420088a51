"""A PostgreSQL store: categories as tables keyed by subject id, read with parameterised SQL.

Withheld fields (CCPA regulations §7024(d)) are never selected: the query asks only whether
a value is held, so the value itself never leaves the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from catalogue import Category
from stores.pool import ping

Row = dict[str, Any]


def _quote(ident: str) -> str:
    # Identifiers come from the validated catalogue, never from a request; quote them anyway.
    return '"' + ident.replace('"', '""') + '"'


def select_list(category: Category) -> str:
    cols = []
    for f in category.fields:
        col = _quote(f.name)
        if f.withheld:
            cols.append(f"({col} IS NOT NULL) AS {_quote(f.name + '_held')}")
        elif f.type == "inet":
            cols.append(f"host({col}) AS {col}")
        else:
            cols.append(col)
    return ", ".join(cols)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A keyset position in a category ordered by (time field, id)."""

    at: datetime
    id: int


class PostgresStore:
    kind = "postgres"

    def __init__(self, name: str, pool: asyncpg.Pool, categories: Mapping[str, Category]) -> None:
        self.name = name
        self.pool = pool
        self.categories = dict(categories)
        # Statements sent, for /metrics and for tests that bound the queries of a request.
        self.statements = 0

    async def ping(self) -> bool:
        return await ping(self.pool)

    async def single(self, key: str, subject_ids: Sequence[UUID]) -> dict[UUID, Row]:
        """One-row categories (profile, preferences…) for several subjects in one statement."""
        cat = self.categories[key]
        sql = (
            f"SELECT subject_id, {select_list(cat)} FROM {_quote(key)} "  # noqa: S608  # identifiers from the catalogue; values are parameters
            "WHERE subject_id = any($1::uuid[])"
        )
        self.statements += 1
        rows = await self.pool.fetch(sql, list(subject_ids))
        return {r["subject_id"]: _row(r) for r in rows}

    async def first_pages(
        self, key: str, subject_ids: Sequence[UUID], limit: int, after: Cursor | None
    ) -> dict[UUID, list[Row]]:
        """A page per subject, ordered by (time field, id), in one statement for all subjects."""
        cat = self.categories[key]
        order = f"{_quote(cat.time_field or 'id')}, id"
        keyset = f"AND ({order}) > ($3, $4)" if after is not None else ""
        sql = (
            f"SELECT s.sid AS subject_id, t.* FROM unnest($1::uuid[]) AS s(sid), LATERAL ("  # noqa: S608  # identifiers from the catalogue; values are parameters
            f"SELECT {select_list(cat)}, {_quote(cat.time_field or 'id')} AS _at, id AS _id "
            f"FROM {_quote(key)} WHERE subject_id = s.sid {keyset} ORDER BY {order} LIMIT $2) t"
        )
        args: list[Any] = [list(subject_ids), limit]
        if after is not None:
            args += [after.at, after.id]
        out: dict[UUID, list[Row]] = {sid: [] for sid in subject_ids}
        self.statements += 1
        for r in await self.pool.fetch(sql, *args):
            out[r["subject_id"]].append(_row(r))
        return out

    async def counts(self, subject_ids: Sequence[UUID]) -> dict[UUID, dict[str, int]]:
        """How many records of each category of this store each subject has: one statement."""
        parts = [
            f"SELECT subject_id, '{key}' AS category, count(*) AS n FROM {_quote(key)} "  # noqa: S608  # catalogue keys are [a-z_]; values are parameters
            "WHERE subject_id = any($1::uuid[]) GROUP BY subject_id"
            for key in self.categories
        ]
        out: dict[UUID, dict[str, int]] = {sid: {} for sid in subject_ids}
        self.statements += 1
        for r in await self.pool.fetch(" UNION ALL ".join(parts), list(subject_ids)):
            out[r["subject_id"]][r["category"]] = r["n"]
        return out


def _row(record: asyncpg.Record) -> Row:
    return {k: v for k, v in record.items() if k != "subject_id"}
