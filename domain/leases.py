"""Who is streaming which export: PostgreSQL advisory locks held by one connection per process.

While an export streams, this process holds a session-level advisory lock keyed by the export
id on a connection of its own. If the process dies (SIGKILL, a crash, a lost host), PostgreSQL
drops the connection and the lock with it at once, so any other process sees in a single query
that the export's runner is gone (`ORPHANED` below) and can fail it: a person may ask again at
once, without waiting for a timeout.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg

from stores.pool import PooledConnection

# The lock key of an export, computed by PostgreSQL on both sides so they cannot disagree.
KEY = "hashtextextended($1::uuid::text, 7)"
# A running export whose lock nobody holds: its process is gone. For use in a WHERE clause.
ORPHANED = "pg_try_advisory_xact_lock(hashtextextended(id::text, 7))"


class Leases:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: PooledConnection | None = None
        self._held: set[UUID] = set()
        self._lock = asyncio.Lock()  # one query at a time on the connection

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn, timeout=10, connection_class=PooledConnection
            )
            # A new session holds nothing: take back the leases of the streams still running.
            for export_id in self._held:
                await self._conn.fetchval(f"SELECT pg_try_advisory_lock({KEY})", export_id)
        else:
            # A lease asked for by a request that went away as its statement was prepared
            # left the exchange open: the next statement would take the error the server
            # queued for it once `statement_timeout` passed (stores/pool.py).
            await self._conn.close_exchange()
        return self._conn

    async def hold(self, export_id: UUID) -> bool:
        """Takes the export's lease; False when another process streams it now. Never waits:
        a blocking lock would hold this connection, and every other lease, behind it."""
        async with self._lock:
            if export_id in self._held:
                return False  # this process streams it already (the lock would re-enter)
            conn = await self._connection()
            taken = await conn.fetchval(f"SELECT pg_try_advisory_lock({KEY})", export_id)
            if taken:
                self._held.add(export_id)
            return bool(taken)

    async def release(self, export_id: UUID) -> None:
        async with self._lock:
            self._held.discard(export_id)
            if self._conn is None or self._conn.is_closed():
                return
            try:
                conn = await self._connection()  # this session, its open exchange closed
                await conn.execute(f"SELECT pg_advisory_unlock({KEY})", export_id)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                # A broken session has lost every lease: a new one takes back the others now.
                self._conn.terminate()
                self._conn = None
                await self._connection()

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                await self._conn.close()
            self._conn = None
