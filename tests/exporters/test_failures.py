"""A bundle whose store fails is never mistaken for a whole one; an abandoned one lets go."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from catalogue import Catalogue
from stores.deployment import Deployment
from stores.files import FilesStore
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import CopyStream, snapshot
from tests.exporters.conftest import bundle_of, collect, make_bundle, new_subject

EVENTS = 200_000
STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@pytest.fixture
async def own_stores(
    deployment: Deployment, catalogue: Catalogue, stores: Stores
) -> AsyncIterator[Stores]:
    """Stores of their own (on the seeded databases of `stores`), so killing or closing
    connections touches no other test."""
    s = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
    yield s
    await s.close()


def in_use(stores: Stores) -> int:
    """Connections lent out by the stores' pools (asyncpg's and asyncmy's)."""
    busy = 0
    for s in stores.by_name.values():
        pools = {id(p): p for p in (getattr(s, "pool", None), getattr(s, "snapshots", None))}
        for pool in pools.values():
            if isinstance(pool, asyncpg.Pool):
                busy += pool.get_size() - pool.get_idle_size()
            elif pool is not None:
                busy += pool.size - pool.freesize
    return busy


async def copy_backend(stores: Stores, needle: str) -> int | None:
    return await stores.postgres("web_analytics").pool.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'active' AND query LIKE 'COPY (%' AND position($1 in query) > 0 "
        "AND pid <> pg_backend_pid()",
        needle,
    )


async def test_a_backend_killed_mid_stream_fails_the_bundle_and_it_is_no_zip(
    own_stores: Stores, catalogue: Catalogue
) -> None:
    heavy = await new_subject(own_stores, catalogue, events=EVENTS)
    chunks = bundle_of(own_stores, catalogue, heavy.id, "csv")
    received: list[bytes] = []
    killed = False
    with pytest.raises(STORE_ERRORS):
        async for chunk in chunks:
            received.append(chunk)
            if not killed:
                pid = await copy_backend(own_stores, "page_events")
                if pid is not None:
                    killed = await own_stores.postgres("web_analytics").pool.fetchval(
                        "SELECT pg_terminate_backend($1)", pid
                    )
    assert killed, "the COPY was running when it was killed"
    partial = b"".join(received)
    assert len(partial) > 0
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(partial))
    # The pool heals: the next bundle of the same stores is whole.
    again = await make_bundle(own_stores, catalogue, subject_id("bob"), "csv")
    assert again.manifest["categories"]["profile"]["records"] == 1


async def test_a_store_that_is_gone_fails_the_bundle(
    own_stores: Stores, catalogue: Catalogue
) -> None:
    gone = own_stores.postgres("payment")
    await gone.snapshots.close()  # where exports take their connections
    await gone.pool.close()
    received: list[bytes] = []
    with pytest.raises(STORE_ERRORS):
        async for chunk in bundle_of(own_stores, catalogue, subject_id("alice"), "json"):
            received.append(chunk)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(b"".join(received)))


class FailingMedia(FilesStore):
    """A files store whose disk fails after the first chunk of a file."""

    async def read(self, relative: str, chunk: int = 16) -> AsyncIterator[bytes]:
        async for data in super().read(relative, chunk):
            yield data
            raise OSError("I/O error")


async def test_a_media_store_failing_mid_file_fails_the_bundle(
    stores: Stores, catalogue: Catalogue
) -> None:
    media = stores.files("recordings")
    broken = FailingMedia(media.name, media.root, stores.config)
    failing = replace(stores, by_name={**stores.by_name, media.name: broken})
    received: list[bytes] = []
    with pytest.raises(OSError, match="I/O error"):
        async for chunk in bundle_of(failing, catalogue, subject_id("alice"), "json"):
            received.append(chunk)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(b"".join(received)))
    assert in_use(stores) == 0


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_an_abandoned_bundle_gives_its_connections_back(
    own_stores: Stores, catalogue: Catalogue, fmt: str
) -> None:
    heavy = await new_subject(own_stores, catalogue, events=EVENTS)
    chunks = bundle_of(own_stores, catalogue, heavy.id, fmt)
    first = await anext(chunks)
    assert first.startswith(b"PK\x03\x04")
    # The analytics snapshot, paused mid-COPY, and the one beside it reading its web pages.
    assert in_use(own_stores) == 2
    await chunks.aclose()  # type: ignore[attr-defined]  # an async generator
    await asyncio.sleep(0)
    assert in_use(own_stores) == 0
    assert await copy_backend(own_stores, str(heavy.id)) is None


async def test_a_cancelled_bundle_gives_its_connections_back(
    own_stores: Stores, catalogue: Catalogue
) -> None:
    heavy = await new_subject(own_stores, catalogue, events=EVENTS)

    async def read_all() -> None:
        await collect(bundle_of(own_stores, catalogue, heavy.id, "json"))

    task = asyncio.create_task(read_all())
    for _ in range(500):
        await asyncio.sleep(0.01)
        if await copy_backend(own_stores, "page_events") is not None:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert in_use(own_stores) == 0


async def test_a_stalled_copy_ends_at_its_deadline_and_gives_its_connection_back(
    own_stores: Stores, catalogue: Catalogue, deployment: Deployment
) -> None:
    """The deadline bounds the whole COPY (asyncpg's per-chunk timeout is off): a store that
    stops answering ends the stream with TimeoutError, as asyncpg's own timeout did."""
    heavy = await new_subject(own_stores, catalogue, events=100)
    store = own_stores.postgres("web_analytics")
    person = await own_stores.person_of(heavy.id)
    assert person is not None
    locker = await asyncpg.connect(deployment.stores.store_of("web_analytics").dsn)
    try:
        async with snapshot(store, statement_timeout=60) as snap:
            snap.copy_timeout = 0.5
            async with locker.transaction():
                await locker.execute("LOCK TABLE page_events IN ACCESS EXCLUSIVE MODE")
                started = time.monotonic()
                with pytest.raises(TimeoutError):
                    await collect(aiter(snap.csv("web_analytics", person)))
                took = time.monotonic() - started
    finally:
        await locker.close()
    assert 0.5 <= took < 3, took
    assert in_use(own_stores) == 0
    assert await copy_backend(own_stores, "page_events") is None


async def test_a_copy_stalled_mid_stream_ends_at_its_deadline(own_stores: Stores) -> None:
    """Bytes flow, then the store stalls: the bytes before come out, then TimeoutError at the
    deadline; the COPY is cancelled and its connection stays usable."""
    pool = own_stores.postgres("web_analytics").pool
    query = (
        "SELECT g, repeat('x', 100), CASE WHEN g = 2000 THEN pg_sleep(30) END "
        "FROM generate_series(1, 2001) g"
    )
    received: list[bytes] = []
    async with pool.acquire() as conn:
        await conn.execute("SET statement_timeout = 0")
        stream = CopyStream(conn, query, [], {"format": "csv"}, deadline=1.0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async for chunk in stream:
                received.append(chunk)
        took = time.monotonic() - started
        assert b"".join(received).count(b"\n") >= 1000
        assert 1.0 <= took < 4, took
        assert await conn.fetchval("SELECT 1") == 1
        await conn.execute("RESET statement_timeout")


async def _idle_in_transaction(stores: Stores) -> int:
    count: int = await stores.postgres("web_analytics").pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%'"
    )
    return count


async def _close_within(stores: Stores, seconds: float) -> None:
    """Closes the stores, or, with connections never given back, ends their pools."""
    try:
        await asyncio.wait_for(stores.close(), seconds)
    except TimeoutError:
        for store in stores.by_name.values():
            for pool in {id(p): p for p in (store.pool, store.snapshots)}.values():  # type: ignore[union-attr]
                if isinstance(pool, asyncpg.Pool):
                    pool.terminate()


async def test_a_bundle_cancelled_twice_gives_its_connections_back(
    deployment: Deployment, catalogue: Catalogue
) -> None:
    """The reader is cancelled, then cancelled again while the ZIP cleans up (a timeout, a
    shutdown): its sources are closed all the same, at once. The second cancel used to escape
    before the bundle's generators were closed, leaving the snapshot and the connection beside
    it lent, one idle in transaction, until the garbage collector found them."""
    own = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
    try:
        heavy = await new_subject(own, catalogue, events=EVENTS)
        streaming = asyncio.Event()

        async def read() -> None:
            got = 0
            async for chunk in bundle_of(own, catalogue, heavy.id, "csv"):
                got += len(chunk)
                if got > 1_000_000:
                    streaming.set()

        task = asyncio.create_task(read())
        await streaming.wait()
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait([task])
        for _ in range(50):  # no gc.collect(): what a server sees
            if in_use(own) == 0:
                break
            await asyncio.sleep(0.05)
        assert (in_use(own), await _idle_in_transaction(own)) == (0, 0)
    finally:
        await _close_within(own, 10)
