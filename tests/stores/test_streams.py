"""The bundle's first records (its web pages) are the data file's first records."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import asyncpg
import pytest

from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import inline, snapshot
from tests.exporters.conftest import collect, new_subject
from tests.stores._sockets import kept_receive_buffer, tcp_socket, unread


async def test_the_first_records_are_those_of_the_whole_read(
    stores: Stores, catalogue: Catalogue
) -> None:
    """`json_lines(limit=n)` reads a page (an index walk per key value, merged) instead of
    sorting every record: the same records, in the same order, as the first n of the whole
    read; bob's events come from two cookie ids (his own and the family computer's)."""
    many = await new_subject(stores, catalogue, events=700)
    for sid in (subject_id("bob"), many.id):
        person = await stores.person_of(sid)
        assert person is not None
        store = stores.postgres("web_analytics")
        for key in store.categories:
            async with snapshot(store) as snap:
                whole = (await collect(aiter(snap.json_lines(key, person)))).splitlines()
                for n in (1, 3, 500, len(whole) + 1):
                    first = await collect(aiter(snap.json_lines(key, person, limit=n)))
                    assert first.splitlines() == whole[:n], (key, n)
    bob = await stores.person_of(subject_id("bob"))
    assert bob is not None and len(bob.of("anonymous_id")) >= 2


async def test_an_exports_snapshot_reads_in_one_backend_in_utc(stores: Stores) -> None:
    """No parallel workers under an export (stores/streams.py SNAPSHOT_SETTINGS), which took
    three backends per export from everyone's small queries, and random reads priced so that a
    person's records are merged index walks, not a scan and a sort. The settings end with the
    export's transaction: the pools' own queries are planned as before."""
    store = stores.postgres("web_analytics")
    async with store.pool.acquire() as conn:
        default_cost = await conn.fetchval("SHOW random_page_cost")
    assert default_cost != "1.1"
    async with snapshot(store) as snap:
        conn = snap.conn
        assert await conn.fetchval("SHOW max_parallel_workers_per_gather") == "0"
        assert await conn.fetchval("SHOW random_page_cost") == "1.1"
        assert await conn.fetchval("SHOW TimeZone") == "UTC"
        assert await conn.fetchval("SHOW transaction_isolation") == "repeatable read"
    async with store.snapshots.acquire() as conn:
        assert await conn.fetchval("SHOW max_parallel_workers_per_gather") != "0"
        assert await conn.fetchval("SHOW random_page_cost") == default_cost


async def test_a_paused_export_pauses_its_backend(stores: Stores, catalogue: Catalogue) -> None:
    """An export that gives way to small requests stops reading its COPY (domain/budget.py),
    and so must its backend, or it goes on taking the database's CPU from them. Over TCP the
    kernel grew the socket's receive buffer to 32 MB here: a paused data file of 23 MB was
    written whole into it (the failure of CI's run on 13d7e82). The exports' connections fix
    it at 1 MB asked (`EXPORT_RECEIVE_BUFFER`, 2 MB kept here): paused, the backend waits on
    its client."""
    heavy = await new_subject(stores, catalogue, events=100_000)  # 11.5 MB of CSV
    person = await stores.person_of(heavy.id)
    assert person is not None
    store = stores.postgres("web_analytics")
    admin = await asyncpg.connect(stores.config.store(store.name).dsn)
    try:
        async with snapshot(store) as snap:
            sock = tcp_socket(snap.conn._transport)  # type: ignore[attr-defined]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == kept_receive_buffer()
            pid = snap.conn.get_server_pid()
            chunks = aiter(snap.csv("web_analytics", person))
            body = await anext(chunks)
            await asyncio.sleep(1.5)  # the export gives way, or its client reads slowly
            state = await admin.fetchrow(
                "SELECT state, wait_event FROM pg_stat_activity WHERE pid = $1", pid
            )
            assert state is not None and tuple(state) == ("active", "ClientWrite")
            # What it wrote ahead and the kernel holds for the export: 2 MB, and at most one
            # more segment (64 kB on loopback), which the kernel takes when it arrives below the
            # bound (511 bytes over, once, with four test processes); 0.8 to 6.3 MB in three
            # runs here without the bound, and 23 MB in CI's.
            assert 0 < unread(sock) <= kept_receive_buffer() + 65_536
            body += await collect(chunks)
        assert body.count(b"\n") == 100_001  # the header, then every event: nothing lost
    finally:
        await admin.close()


HOSTILE = [
    "o'brien",
    "back\\slash",
    '"quoted", {braced}',
    "'); SELECT pg_sleep(10); --",
    "$1 and $$dollars$$",
    "zoë 🙂",
    "",
    "NULL",
]


async def test_a_copys_values_are_written_in_as_the_server_quotes_them(stores: Stores) -> None:
    """COPY takes no parameters: `inline` writes them in, quoted by the server as the types the
    query gives them, and learns those types once a query text. Whatever the values hold, the
    COPY reads exactly what the same statement with parameters reads."""
    store = stores.postgres("web_analytics")
    query = (
        "SELECT v, $2::timestamptz AS at FROM unnest($1::text[]) AS v "
        "WHERE v = any($1::text[]) AND $3::text[] IS NULL ORDER BY v"
    )
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    learnt: dict[str, tuple[str, ...]] = {}
    async with store.pool.acquire() as conn:
        expected = [tuple(r) for r in await conn.fetch(query, HOSTILE, at, None)]
        written = await inline(conn, query, [HOSTILE, at, None], learnt)
        # Written in one pass: the "$1" of a value is not taken for a parameter.
        assert "$2" not in written and "$3" not in written and "pg_sleep" in written
        assert [tuple(r) for r in await conn.fetch(written)] == expected
        assert learnt == {
            query: ('"pg_catalog"."_text"', '"pg_catalog"."timestamptz"', '"pg_catalog"."_text"')
        }
        # The types come from what was learnt: the query is not prepared again.
        learnt[query] = ('"pg_catalog"."int4"',) * 3
        with pytest.raises(asyncpg.DataError):
            await inline(conn, query, [["o'brien"], at, None], learnt)
        # A query without parameters is left as it is, without a round trip.
        assert await inline(conn, "SELECT 1", [], {}) == "SELECT 1"
