"""The service database's roles: the owner that migrates, the login role that serves.

The owner owns the schema and runs `dsar migrate`; the service connects as a login role that is
a member of `dsar_app` (the grants of the migrations) and nothing more: not an owner, not a
superuser, no BYPASSRLS, so row-level security binds it (stores/scope.py). The embedded
PostgreSQL of the demo makes both, `dsar_owner` and `dsar_api`, and uses them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from stores.config import with_database

APP_GROUP = "dsar_app"
EMBEDDED_OWNER = "dsar_owner"
EMBEDDED_SERVICE = "dsar_api"

# Roles are cluster-wide and several databases may be set up at once on one server: create a
# role only when it is missing, and take a concurrent creation as success.
_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) THEN
        EXECUTE format('CREATE ROLE %I {options}', {name});
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$"""


def with_user(url: str, user: str) -> str:
    """The same server URL with another user name and no password (trust or peer auth, or a
    password the environment gives: PGPASSWORD, ~/.pgpass)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{quote(user)}@{host}", parts.path, parts.query, ""))


async def ensure_role(conn: asyncpg.Connection, name: str, options: str) -> None:
    """Creates role `name` with `options` (a constant of ours) unless it exists."""
    literal = await conn.fetchval("SELECT quote_literal($1)", name)
    await conn.execute(_ROLE.format(name=literal, options=options))


async def ensure_service_role(conn: asyncpg.Connection, name: str) -> None:
    """A login role that may do exactly what the migrations grant `dsar_app`."""
    await ensure_role(conn, APP_GROUP, "NOLOGIN")
    await ensure_role(conn, name, f"LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB IN ROLE {APP_GROUP}")


async def _embedded(server: str, database: str) -> str:
    """Makes the demo's roles and database; returns the URL migrations run with (the owner's,
    or the superuser's for a demo database made before the roles existed)."""
    conn = await asyncpg.connect(server)
    try:
        await ensure_role(conn, EMBEDDED_OWNER, "LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS")
        await ensure_service_role(conn, EMBEDDED_SERVICE)
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database
        )
        if owner is None:
            ident = await conn.fetchval("SELECT quote_ident($1)", database)
            try:
                await conn.execute(f"CREATE DATABASE {ident} OWNER {EMBEDDED_OWNER}")
            except asyncpg.DuplicateDatabaseError:
                pass  # created by a concurrent process between our check and our CREATE
            owner = EMBEDDED_OWNER
    finally:
        await conn.close()
    if owner == EMBEDDED_OWNER:
        return with_database(with_user(server, EMBEDDED_OWNER), database)
    return with_database(server, database)


def embedded_roles(server: str, database: str) -> str:
    """`_embedded` from synchronous code, even under a running event loop (start-up only)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _embedded(server, database)).result()


@dataclass(frozen=True, slots=True)
class RoleReport:
    """Why a role is not bound by row-level security, if it is not."""

    role: str
    superuser: bool
    bypassrls: bool
    owns: tuple[str, ...]

    @property
    def bound(self) -> bool:
        return not (self.superuser or self.bypassrls or self.owns)

    def problem(self) -> str | None:
        if self.bound:
            return None
        why = (
            "is a superuser"
            if self.superuser
            else "has BYPASSRLS"
            if self.bypassrls
            else f"owns {', '.join(self.owns)}"
        )
        return (
            f"the service database role {self.role} {why}: row-level security does not bind "
            "it; serve as a login role in dsar_app (docs/OPERATIONS.md, Databases)"
        )


async def role_report(conn: asyncpg.Connection | PoolConnectionProxy) -> RoleReport:
    """The connected role: superuser, BYPASSRLS, and which row-secured tables it owns (an owner
    is not bound either: the policies are not forced on owners)."""
    me = await conn.fetchrow(
        "SELECT current_user AS role, rolsuper, rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user"
    )
    assert me is not None
    owned = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relrowsecurity AND n.nspname = 'public' "
        "AND pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY 1"
    )
    return RoleReport(
        me["role"], me["rolsuper"], me["rolbypassrls"], tuple(r["relname"] for r in owned)
    )
