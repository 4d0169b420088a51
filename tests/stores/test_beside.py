"""`Snapshot.beside`: a second connection that reads the export's own instant.

An export reads a category's web pages on it while the data file streams on the first
(exporters/bundle.py). Both must show the same records: the second transaction imports the
first one's snapshot (`pg_export_snapshot`, `SET TRANSACTION SNAPSHOT`), so a record written
after the export began is in neither, though a transaction of its own would see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest

from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import Snapshot, snapshot


async def _ids(snap: Snapshot, person: object) -> list[int]:
    stream = snap.json_lines("web_analytics", person)  # type: ignore[arg-type]
    lines = b"".join([c async for c in stream]).splitlines()
    return [orjson.loads(line)["id"] for line in lines]


async def test_the_snapshot_beside_reads_the_exports_instant_not_its_own(stores: Stores) -> None:
    store = stores.postgres("web_analytics")
    person = await stores.person_of(subject_id("bob"))
    assert person is not None
    cookie = person.of("anonymous_id")[0]
    company = await asyncpg.connect(stores.config.store(store.name).dsn)
    try:
        async with snapshot(store) as snap:
            before = await _ids(snap, person)
            # Written and committed after the export's snapshot was taken.
            new = await company.fetchval(
                "INSERT INTO page_events (anonymous_id, ts, session_id, url, event_type) "
                "VALUES ($1, now(), 's-beside', 'https://example.test/beside', 'click') "
                "RETURNING id",
                cookie,
            )
            async with snap.beside() as other:
                assert other is not None
                assert other.taken_at == snap.taken_at
                assert await _ids(other, person) == before
            # A read-only transaction of its own, taken now, does see it: the test can tell.
            async with snapshot(store) as fresh:
                assert new in await _ids(fresh, person)
        assert new not in before
    finally:
        await company.execute("DELETE FROM page_events WHERE session_id = 's-beside'")
        await company.close()


async def test_no_free_connection_means_no_snapshot_beside(stores: Stores) -> None:
    """An export never waits for its pages' connection: with none free, `beside` is None and
    the bundle reads its pages after each data file, on its own connection."""
    store = stores.postgres("web_analytics")
    pool = store.snapshots
    async with snapshot(store) as snap:
        held = []
        try:
            while pool.get_size() < pool.get_max_size() or pool.get_idle_size():
                held.append(await pool.acquire(timeout=1))
            async with snap.beside() as other:
                assert other is None
        finally:
            for conn in held:
                await pool.release(conn)
        async with snap.beside() as other:
            assert other is not None  # one came free
    assert pool.get_idle_size() == pool.get_size()  # both went back


@pytest.fixture
async def own_stores(deployment: Deployment, catalogue: Catalogue) -> AsyncIterator[Stores]:
    s = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
    yield s
    # close() would wait forever for a connection that is never given back.
    for store in s.by_name.values():
        for pool in (getattr(store, "snapshots", None), getattr(store, "pool", None)):
            if isinstance(pool, asyncpg.Pool):
                pool.terminate()
            elif pool is not None:
                pool.close()
                await pool.wait_closed()
    await s.subjects.pool.close()


def _lent(pool: asyncpg.Pool) -> int:
    return pool.get_size() - pool.get_idle_size()


async def _given_back_after_two_cancels(stores: Stores, beside: bool) -> tuple[int, int]:
    store = stores.postgres("web_analytics")
    pool = store.snapshots
    inside = asyncio.Event()

    async def export() -> None:
        async with snapshot(store) as snap:
            if beside:
                async with snap.beside() as other:
                    assert other is not None
                    inside.set()
                    await asyncio.sleep(3600)
            else:
                inside.set()
                await asyncio.sleep(3600)

    task = asyncio.create_task(export())
    await inside.wait()
    lent = _lent(pool)
    task.cancel()  # the client went away
    for _ in range(3):  # its cleanup now awaits the server (beside's ROLLBACK)
        await asyncio.sleep(0)
    task.cancel()  # cancelled again while it cleans up
    await asyncio.wait([task])
    await asyncio.sleep(0.5)
    return lent, lent - _lent(pool)


async def test_the_snapshot_beside_gives_its_connection_back_when_cancelled_twice(
    own_stores: Stores,
) -> None:
    """The client went away, then a timeout or the server's shutdown cancels the request again
    while it cleans up: the second cancel lands in beside()'s ROLLBACK, and its release must
    still run (on 157e71a the connection was lost to the pool for good)."""
    assert await _given_back_after_two_cancels(own_stores, beside=True) == (2, 2)
