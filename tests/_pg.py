"""A real PostgreSQL for the tests: TEST_DATABASE_URL, else 127.0.0.1:5432, else embedded."""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from stores.config import with_database
from stores.embedded import start_embedded
from stores.migrate import apply, ensure_database, migrations_for
from stores.roles import ensure_service_role, with_user

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def with_statement_timeout(dsn: str, ms: int) -> str:
    """`dsn` whose statements time out after `ms` milliseconds (stores/pool.py reads it)."""
    parts = urlsplit(dsn)
    query = urlencode([*parse_qsl(parts.query), ("statement_timeout", str(ms))])
    return urlunsplit(parts._replace(query=query))


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@contextmanager
def test_server() -> Iterator[str]:
    """Yields a server URL (its `postgres` database) for this test session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield with_database(url, "postgres")
        return
    if asyncio.run(_answers(LOCAL)):
        yield LOCAL
        return
    folder = Path(tempfile.mkdtemp(prefix="dsar-test-pg-"))
    uri, server = start_embedded(folder / "data", cleanup_mode="delete")
    try:
        yield uri
    finally:
        server.cleanup()


def unique_prefix() -> str:
    return f"dsart_{secrets.token_hex(4)}"


async def new_database(server: str, name: str, *, migrated: bool = True) -> str:
    """A database `name` on `server` (made if missing), with the service's migrations applied."""
    await ensure_database(server, name)
    dsn = with_database(server, name)
    if migrated:
        await apply(dsn, migrations_for("service"))
    return dsn


async def drop_databases(server_url: str, prefix: str) -> None:
    """Drops every database this run created (all start with the run's prefix)."""
    conn = await asyncpg.connect(server_url)
    try:
        names = [
            r["datname"]
            for r in await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
            )
        ]
        for name in names:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            ident = await conn.fetchval("SELECT quote_ident($1)", name)
            await conn.execute(f"DROP DATABASE IF EXISTS {ident}")
    finally:
        await conn.close()


async def create_service_role(server_url: str, name: str) -> str:
    """A login role of this run only (roles are cluster-wide: each run makes and drops its own),
    a member of dsar_app like a deployment's service role; returns the server URL as it."""
    conn = await asyncpg.connect(server_url)
    try:
        await ensure_service_role(conn, name)
    finally:
        await conn.close()
    return with_user(server_url, name)


async def drop_role(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        ident = await conn.fetchval("SELECT quote_ident($1)", name)
        await conn.execute(f"DROP ROLE IF EXISTS {ident}")
    finally:
        await conn.close()
