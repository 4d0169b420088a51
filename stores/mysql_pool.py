"""MySQL / MariaDB connections for a store: DSN, session settings, pool, server version.

Sessions run in UTC, read only, with a server-side statement bound; every wait is bounded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncmy

CONNECT_TIMEOUT = 5
ACQUIRE_TIMEOUT = 2.0
PING_BUDGET = 1.0
COMMAND_GRACE = 2.0
STATEMENT_TIMEOUT_MS = 30_000


def parse_dsn(dsn: str) -> dict[str, Any]:
    """`mysql://user:pw@host:3306/db?statement_timeout=ms` as asyncmy's connect arguments."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    timeout = query.get("statement_timeout", str(STATEMENT_TIMEOUT_MS))
    if not timeout.isdigit() or int(timeout) <= 0:
        raise ValueError("statement_timeout in a database URL must be a positive number of ms")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "db": unquote(parts.path.lstrip("/")) or None,
        "statement_timeout": int(timeout) / 1000,
    }


def session_sql(mariadb: bool, statement_timeout: float) -> str:
    """UTC, a server-side statement bound, and a plain SQL mode: with NO_BACKSLASH_ESCAPES
    the driver's escaping of parameters would be read differently."""
    bound = (
        f"max_statement_time = {statement_timeout:g}"
        if mariadb
        else f"max_execution_time = {int(statement_timeout * 1000)}"
    )
    # Read only: a store is the company's, and dsar never writes to it.
    read_only = "tx_read_only = 1" if mariadb else "transaction_read_only = 1"
    return f"SET time_zone = '+00:00', sql_mode = 'NO_ENGINE_SUBSTITUTION', {bound}, {read_only}"


async def server_version(dsn: str) -> str:
    """The server's own version string (MariaDB says so in it)."""
    args = parse_dsn(dsn)
    args.pop("statement_timeout")
    conn = await asyncmy.connect(**args, connect_timeout=CONNECT_TIMEOUT)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT VERSION()")
            row = await cur.fetchone()
    finally:
        conn.close()
    return str(row[0]) if row else ""


async def create_pool(dsn: str, *, max_size: int = 10) -> tuple[asyncmy.Pool, bool]:
    """A pool of UTC sessions with bounded waits; and whether the server is MariaDB.

    The two servers spell the statement bound differently, so one connection asks first.
    """
    args = parse_dsn(dsn)
    timeout = args.pop("statement_timeout")
    common = {**args, "connect_timeout": CONNECT_TIMEOUT, "charset": "utf8mb4"}
    mariadb = "mariadb" in (await server_version(dsn)).lower()
    pool = await asyncmy.create_pool(
        minsize=1,
        maxsize=max_size,
        pool_recycle=300,
        autocommit=True,
        read_timeout=timeout + COMMAND_GRACE,
        init_command=session_sql(mariadb, timeout),
        **common,
    )
    return pool, mariadb
