"""The demo company's CRM on MySQL / MariaDB (DSAR_DEMO_MYSQL_URL): its tables and its rows.

The same tables as stores/migrations/crm on PostgreSQL, in MySQL's words. Demo only: dsar never
writes to a company's store; these functions run from `dsar migrate` and `dsar seed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy

TABLES = (
    """CREATE TABLE IF NOT EXISTS contacts (
        id          bigint PRIMARY KEY,
        email       varchar(320) NOT NULL,
        company     text,
        job_title   text,
        updated_at  datetime(6) NOT NULL,
        KEY contacts_email (email)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin""",
    """CREATE TABLE IF NOT EXISTS messages (
        id             bigint PRIMARY KEY,
        contact_email  varchar(320) NOT NULL,
        channel        text NOT NULL,
        subject        text NOT NULL,
        body           text NOT NULL,
        received_at    datetime(6) NOT NULL,
        KEY messages_contact (contact_email, received_at, id)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin""",
)


def _params(dsn: str, database: bool = True) -> dict[str, Any]:
    parts = urlsplit(dsn)
    out: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "charset": "utf8mb4",
        "autocommit": True,
    }
    if database:
        out["db"] = parts.path.lstrip("/")
    return out


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


async def ensure_tables(dsn: str) -> list[str]:
    """Creates the CRM's database and tables where missing; returns what was created."""
    name = urlsplit(dsn).path.lstrip("/")
    conn = await asyncmy.connect(**_params(dsn, database=False))
    try:
        async with conn.cursor() as cur:
            created = not await cur.execute(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
            )
            await cur.execute(f"CREATE DATABASE IF NOT EXISTS {_ident(name)}")
            await cur.execute(f"USE {_ident(name)}")
            for ddl in TABLES:
                await cur.execute(ddl)
    finally:
        conn.close()
    return ["crm (MySQL)"] if created else []


async def insert_rows(
    dsn: str, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    conn = await asyncmy.connect(**_params(dsn))
    try:
        async with conn.cursor() as cur:
            await cur.execute("SET time_zone = '+00:00'")
            cols = ", ".join(_ident(c) for c in columns)
            marks = ", ".join(["%s"] * len(columns))
            await cur.executemany(
                f"INSERT INTO {_ident(table)} ({cols}) VALUES ({marks})",  # noqa: S608  # demo tables; values are parameters
                [tuple(_naive_utc(v) for v in r) for r in rows],
            )
    finally:
        conn.close()


def _naive_utc(value: Any) -> Any:
    # MySQL's datetime has no zone: the demo stores UTC, and sessions read it with +00:00.
    tz = getattr(value, "tzinfo", None)
    if tz is not None:
        from datetime import UTC

        return value.astimezone(UTC).replace(tzinfo=None)
    return value
