"""The bundle's first records (its web pages) are the data file's first records."""

from __future__ import annotations

from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import snapshot
from tests.exporters.conftest import collect, new_subject


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
