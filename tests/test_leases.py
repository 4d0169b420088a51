"""An export's lease (domain/leases.py) lives on a connection of its own, outside the pools: a
statement cut short on it (a request that went away as its statement was prepared) must not
fail the next lease asked for once the server's statement timeout has passed."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg

from domain.leases import KEY, Leases
from stores.deployment import Deployment
from tests._pg import with_statement_timeout


async def test_a_statement_cut_short_does_not_fail_the_next_lease(deployment: Deployment) -> None:
    leases = Leases(with_statement_timeout(deployment.service_dsn, 300))
    first, second = uuid4(), uuid4()
    try:
        assert await leases.hold(first)
        conn = await leases._connection()
        # Parse, Describe, Flush: as a cancelled hold leaves it. Kept: asyncpg closes a
        # statement it collects (Close, Sync) with the next prepare, which would end the exchange.
        kept = [await conn.prepare("SELECT 1")]
        await asyncio.sleep(0.6)  # twice the statement timeout: the server has queued its error
        assert await leases.hold(second)
        backend = conn.get_server_pid()
        kept.append(await conn.prepare("SELECT 2"))
        await asyncio.sleep(0.6)
        await leases.release(first)  # the session, and the other lease with it, kept
        assert (await leases._connection()).get_server_pid() == backend
        other = await asyncpg.connect(deployment.service_dsn)
        try:
            async with other.transaction():  # another process finds it held
                assert not await other.fetchval(f"SELECT pg_try_advisory_xact_lock({KEY})", second)
                assert await other.fetchval(f"SELECT pg_try_advisory_xact_lock({KEY})", first)
        finally:
            await other.close()
        assert len(kept) == 2
    finally:
        await leases.close()
