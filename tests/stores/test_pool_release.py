"""A pooled connection goes back to the queue at once when it comes back as it was lent
(`BoundedPool.release`), and by asyncpg's own release otherwise: an open transaction rolled
back, a listener removed, a worn-out connection replaced, an exchange left open by a failed
operation closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from stores.deployment import Deployment
from stores.pool import BoundedPool, create_pool
from tests._pg import with_statement_timeout


@pytest.fixture
async def pool(deployment: Deployment) -> AsyncIterator[BoundedPool]:
    p = await create_pool(deployment.service_dsn, min_size=1, max_size=1)
    assert isinstance(p, BoundedPool)
    yield p
    await p.close()


@pytest.fixture
async def quick(deployment: Deployment) -> AsyncIterator[BoundedPool]:
    """One connection whose statements time out after 300 ms."""
    p = await create_pool(
        with_statement_timeout(deployment.service_dsn, 300), min_size=1, max_size=1
    )
    yield p
    await p.close()


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records each release that takes asyncpg's own way."""
    calls: list[object] = []
    inner = asyncpg.Pool.release

    async def counted(self: asyncpg.Pool, connection: Any, **kwargs: Any) -> None:
        calls.append(connection)
        await inner(self, connection, **kwargs)

    monkeypatch.setattr(asyncpg.Pool, "release", counted)
    return calls


async def test_a_connection_lent_and_given_back_as_it_was_is_free_at_once(
    pool: BoundedPool, slow: list[object]
) -> None:
    backend = await pool.fetchval("SELECT pg_backend_pid()")
    for _ in range(3):
        assert await pool.fetchval("SELECT pg_backend_pid()") == backend  # the same one, reused
    assert pool.get_idle_size() == 1
    assert slow == []
    async with pool.acquire() as conn:
        proxy = conn
    with pytest.raises(asyncpg.InterfaceError):
        await proxy.fetchval("SELECT 1")  # the proxy lent is detached, as asyncpg's release does
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT 1")
    assert slow == []  # a transaction ended before the release


async def test_anything_else_takes_asyncpgs_own_release(
    pool: BoundedPool, slow: list[object]
) -> None:
    # A transaction left open: rolled back, and the connection is free again.
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("SET LOCAL application_name = 'left open'")
    assert len(slow) == 1
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SHOW application_name") == "dsar"

    # A listener left on it: removed (asyncpg warns about it).
    conn = await pool.acquire()
    await conn.add_listener("dsar_pool_test", lambda *_: None)
    with pytest.warns(UserWarning):
        await pool.release(conn)
    assert len(slow) == 2
    async with pool.acquire() as conn:
        assert not conn._con._listeners  # type: ignore[attr-defined]  # asyncpg's own

    # A connection at its last query: closed and replaced.
    backend = await pool.fetchval("SELECT pg_backend_pid()")
    async with pool.acquire() as conn:
        conn._holder._max_queries = 1  # type: ignore[attr-defined]  # as if it had run its 50,000 (`max_queries`)
    assert len(slow) == 3
    assert await pool.fetchval("SELECT pg_backend_pid()") != backend


async def test_who_waits_for_a_connection_gets_it_before_its_releaser_asks_again(
    pool: BoundedPool, slow: list[object]
) -> None:
    order: list[str] = []

    async def waiter() -> None:
        async with pool.acquire() as conn:
            order.append("waiter")
            await conn.execute("SELECT 1")

    conn = await pool.acquire()  # the pool's one connection
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0.05)
    assert not order  # it waits
    await pool.release(conn)
    async with pool.acquire():  # asked again at once, as a request's next statement does
        order.append("releaser")
    await waiting
    assert order == ["waiter", "releaser"]
    assert slow == []


async def test_a_stale_connection_is_not_taken_as_free(
    pool: BoundedPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `expire_connections()`, the live connection in the queue is one asyncpg connects
    again when lent: a wait, so the acquire keeps its bound (`BoundedPool._acquire`)."""
    bounds: list[float | None] = []  # the bound each acquire waits under
    inner = asyncpg.Pool._acquire

    async def recorded(self: asyncpg.Pool, timeout: float | None) -> Any:  # noqa: ASYNC109  # asyncpg's signature
        bounds.append(timeout)
        return await inner(self, timeout)  # type: ignore[misc]  # asyncpg's own

    monkeypatch.setattr(asyncpg.Pool, "_acquire", recorded)
    for _ in range(2):
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    assert bounds[-1] is None  # a live one free: taken at once, no bound needed
    await pool.expire_connections()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert bounds[-1] == pool.acquire_timeout  # stale: connected again, under the bound
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert bounds[-1] is None  # of the current generation again


# asyncpg prepares a statement with Parse, Describe and Flush; only the Bind and Execute after
# them end the exchange (Sync). An operation that fails on the client in between left the
# server mid-exchange with its statement timer running, on a connection that looked idle: once
# it had sat in the pool for `statement_timeout`, the next statement sent on it, anyone's,
# failed at once with "canceling statement due to statement timeout" (a CI failure, in
# `introspect`, after a test that had caught such an error inside its `acquire()`).


async def test_an_argument_that_does_not_encode_leaves_no_open_exchange_behind(
    quick: BoundedPool, slow: list[object]
) -> None:
    backend = await quick.fetchval("SELECT pg_backend_pid()")
    with pytest.raises(asyncpg.DataError):  # raised by asyncpg, after the Parse, before a Bind
        await quick.fetchval("SELECT $1::int4 + 1", "not a number")
    assert len(slow) == 1  # asyncpg's own release, which ends the exchange
    await asyncio.sleep(0.6)  # idle in the pool for twice the statement timeout
    assert await quick.fetchval("SELECT pg_backend_pid()") == backend  # the same one, answering
    assert len(slow) == 1


async def _caught_error(conn: Any) -> None:
    with pytest.raises(asyncpg.DataError):
        await conn.fetchval("SELECT $1::int4 + 2", "not a number")


async def _prepared_not_run(conn: Any) -> None:
    # As when a task is cancelled as its prepare returns, before its Bind.
    await conn.prepare("SELECT 3")  # Parse, Describe, Flush: the exchange is open


async def _empty_batch(conn: Any) -> None:
    await conn.executemany("SELECT $1::int4", [])  # Parse, Describe, Flush; no Bind to send


@pytest.mark.parametrize("leave", [_caught_error, _prepared_not_run, _empty_batch])
async def test_what_a_lending_leaves_open_is_closed_on_its_release(
    quick: BoundedPool, slow: list[object], leave: Any
) -> None:
    backend = await quick.fetchval("SELECT pg_backend_pid()")
    async with quick.acquire() as conn:
        await leave(conn)
    assert len(slow) == 1
    await asyncio.sleep(0.6)
    assert await quick.fetchval("SELECT pg_backend_pid()") == backend


async def test_a_statement_run_to_its_end_closes_what_its_prepare_opened(
    quick: BoundedPool, slow: list[object]
) -> None:
    async with quick.acquire() as conn:
        statement = await conn.prepare("SELECT 4")
        assert await conn.fetchval("SELECT 5") == 5
    assert statement is not None and slow == []  # released at once


async def test_an_exchange_the_server_has_already_cancelled_is_closed_on_release(
    quick: BoundedPool, slow: list[object]
) -> None:
    # Held past the statement timeout before it goes back: the server's error waits on the
    # connection, and the release's own statement takes it.
    backend = await quick.fetchval("SELECT pg_backend_pid()")
    async with quick.acquire() as conn:
        await conn.prepare("SELECT 6")
        await asyncio.sleep(0.6)
    assert len(slow) == 1
    assert await quick.fetchval("SELECT pg_backend_pid()") == backend
