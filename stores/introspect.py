"""What each store's catalogs say of its tables: columns and types, indexes, privileges.

Read by `dsar stores check` and `dsar stores draft`; metadata only, never a row of data.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy
import asyncmy.errors
import asyncpg

from stores.postgres import quote_table

CONNECT_TIMEOUT = 5.0
_PG_KINDS = {"r": "table", "p": "table", "m": "table", "v": "view", "f": "foreign table"}


@dataclass(frozen=True, slots=True)
class Relation:
    """A table or view as the store's catalogs describe it; none of its rows is read."""

    name: str
    kind: str  # table | view | foreign table
    columns: Mapping[str, str]  # column -> SQL type, in the table's order
    leads: frozenset[str] = frozenset()  # what each index starts with: a column or lower(col)
    unique: tuple[frozenset[str], ...] = ()  # the columns of each unique index
    unreadable: frozenset[str] = frozenset()  # columns the role may not SELECT
    writable: bool = False  # the role may INSERT, UPDATE, DELETE or TRUNCATE

    def unique_within(self, columns: Iterable[str]) -> bool:
        wanted = set(columns)
        return any(u <= wanted for u in self.unique)


@dataclass(slots=True)
class Schema:
    kind: str
    role: str = "an unknown role"
    relations: dict[str, Relation] = field(default_factory=dict)
    superuser: bool = False
    read_only: bool = False  # a hot standby: nothing can be written, whatever the role
    privileges_checked: bool = False
    failure: str = ""


async def read_schema(kind: str, dsn: str, tables: Iterable[str] | None) -> Schema:
    """The named tables (all of the database's, with None) of one PostgreSQL or MySQL store."""
    return await _READERS[kind](dsn, None if tables is None else sorted(set(tables)))


async def read_files(path: Path) -> str:
    """What is wrong with a files store's folder, or ""."""

    def probe() -> str:
        if not path.is_dir():
            return f"folder {path} not found"
        if not os.access(path, os.R_OK | os.X_OK):
            return f"folder {path} cannot be read"
        return ""

    return await asyncio.to_thread(probe)


async def _postgres(dsn: str, tables: list[str] | None) -> Schema:
    schema = Schema("postgres", privileges_checked=True)
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        schema.failure = f"cannot connect ({type(exc).__name__})"
        return schema
    try:
        async with conn.transaction(readonly=True):
            me = await conn.fetchrow(
                "SELECT current_user AS role, r.rolsuper, pg_is_in_recovery() AS replica "
                "FROM pg_roles r WHERE r.rolname = current_user"
            )
            assert me is not None
            schema.role = f"'{me['role']}'"
            schema.superuser, schema.read_only = me["rolsuper"], me["replica"]
            names = tables if tables is not None else await _pg_tables(conn)
            for name in names:
                rel = await _pg_relation(conn, name)
                if rel is not None:
                    schema.relations[name] = rel
    except asyncpg.PostgresError as exc:
        schema.failure = f"reading the catalogs failed with SQLSTATE {exc.sqlstate}"
    finally:
        await conn.close()
    return schema


async def _pg_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT CASE WHEN pg_table_is_visible(c.oid) THEN c.relname "
        "ELSE n.nspname || '.' || c.relname END AS name "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1"
    )
    return [r["name"] for r in rows]


async def _pg_relation(conn: asyncpg.Connection, name: str) -> Relation | None:
    found = await conn.fetchrow(
        "SELECT c.oid, c.relkind::text AS relkind, "
        "has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS writable "
        "FROM pg_class c WHERE c.oid = to_regclass($1)",
        quote_table(name),
    )
    if found is None or found["relkind"] not in _PG_KINDS:
        return None
    columns = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, "
        "has_column_privilege(a.attrelid, a.attnum, 'SELECT') AS readable "
        "FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        found["oid"],
    )
    # Partial indexes serve only their own WHERE: they are not counted.
    indexes = await conn.fetch(
        "SELECT (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid "
        "AND a.attnum = i.indkey[0]) AS first_column, "
        "pg_get_indexdef(i.indexrelid, 1, true) AS first, "
        "i.indisunique AND i.indexprs IS NULL AS is_unique, "
        "ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey::int2[])) AS columns "
        "FROM pg_index i WHERE i.indrelid = $1 AND i.indisvalid AND i.indpred IS NULL",
        found["oid"],
    )
    return Relation(
        name,
        _PG_KINDS[found["relkind"]],
        {r["attname"]: r["type"] for r in columns},
        frozenset(r["first_column"] or r["first"] for r in indexes),
        tuple(frozenset(r["columns"]) for r in indexes if r["is_unique"]),
        frozenset(r["attname"] for r in columns if not r["readable"]),
        found["writable"],
    )


def _mysql_params(dsn: str) -> dict[str, Any]:
    parts = urlsplit(dsn)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "db": parts.path.lstrip("/") or None,
        "charset": "utf8mb4",
        "connect_timeout": CONNECT_TIMEOUT,
    }


async def _mysql(dsn: str, tables: list[str] | None) -> Schema:
    # Write privileges are not read here: MySQL's roles and grants have no one query that
    # answers "can this user write to that table".
    schema = Schema("mysql")
    try:
        conn = await asyncmy.connect(**_mysql_params(dsn))
    except (OSError, TimeoutError, asyncmy.errors.MySQLError) as exc:
        schema.failure = f"cannot connect ({type(exc).__name__})"
        return schema
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT DATABASE(), CURRENT_USER()")
            database, user = await cur.fetchone()
            schema.role = f"'{user}'"
            if tables is None:
                await cur.execute(
                    "SELECT TABLE_NAME FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
                    (database,),
                )
                tables = [r[0] for r in await cur.fetchall()]
            for name in tables:
                rel = await _mysql_relation(cur, database, name)
                if rel is not None:
                    schema.relations[name] = rel
    except asyncmy.errors.MySQLError as exc:
        schema.failure = f"reading the catalogs failed ({type(exc).__name__})"
    finally:
        conn.close()
    return schema


async def _mysql_relation(cur: Any, database: str, name: str) -> Relation | None:
    owner, _, table = name.rpartition(".")
    where = (owner or database, table)
    await cur.execute(
        "SELECT TABLE_TYPE FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        where,
    )
    found = await cur.fetchone()
    if found is None:
        return None
    await cur.execute(
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        where,
    )
    columns = {str(c): str(t).lower() for c, t in await cur.fetchall()}
    await cur.execute(
        "SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE "
        "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        where,
    )
    leads: set[str] = set()
    by_index: dict[str, set[str]] = {}
    unique: set[str] = set()
    for index, seq, column, non_unique in await cur.fetchall():
        if seq == 1 and column is not None:  # MySQL 8's functional indexes have no column
            leads.add(str(column))
        by_index.setdefault(str(index), set()).add(str(column))
        if not int(non_unique):
            unique.add(str(index))
    return Relation(
        name,
        "view" if found[0] == "VIEW" else "table",
        columns,
        frozenset(leads),
        tuple(frozenset(c) for i, c in by_index.items() if i in unique),
    )


_READERS = {"postgres": _postgres, "mysql": _mysql}
