"""Migrations: plain SQL files per database, applied in order, once, each in its own transaction.

A failed file rolls back entirely, so the database is left as it was before that file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

# One advisory lock key for all migrations, so two starting processes do not race.
_LOCK = 0x64736172


class MigrationError(Exception):
    """A migration that failed; names the file and the SQLSTATE, never data."""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_for(schema: str, folder: Path | None = None) -> list[Migration]:
    if folder is None:
        root = resources.files("stores") / "migrations" / schema
        files = sorted((f.name, f.read_text(encoding="utf-8")) for f in root.iterdir())
    else:
        files = sorted((f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir())
    return [Migration(name, sql) for name, sql in files if name.endswith(".sql")]


async def ensure_database(server_dsn: str, database: str) -> None:
    """Creates `database` on the server of `server_dsn` if it does not exist yet."""
    conn = await asyncpg.connect(server_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Identifiers cannot be parameters; quote_ident is done by the server.
            ident = await conn.fetchval("SELECT quote_ident($1)", database)
            await conn.execute(f"CREATE DATABASE {ident}")
    except asyncpg.DuplicateDatabaseError:
        pass  # created by a concurrent process between our check and our CREATE
    finally:
        await conn.close()


async def apply(dsn: str, migrations: list[Migration]) -> list[str]:
    """Applies what is not applied yet; returns the names applied now."""
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
        # Created only when missing: the service's role may read it (to find nothing to do)
        # but may not create anything, not even "if not exists".
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            await conn.execute(
                """CREATE TABLE schema_migrations (
                       name text PRIMARY KEY,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
        done = {
            r["name"]: r["checksum"] for r in await conn.fetch("SELECT * FROM schema_migrations")
        }
        for m in migrations:
            if m.name in done:
                if done[m.name] != m.checksum:
                    raise MigrationError(f"{m.name}: changed after it was applied")
                continue
            try:
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                        m.name,
                        m.checksum,
                    )
            except asyncpg.InsufficientPrivilegeError:
                raise MigrationError(
                    f"{m.name}: this role may not change the schema (SQLSTATE 42501); "
                    "migrations run as the owner: set DSAR_OWNER_DATABASE_URL"
                ) from None
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{m.name}: failed with SQLSTATE {exc.sqlstate}") from None
            applied_now.append(m.name)
    finally:
        await conn.close()
    return applied_now
