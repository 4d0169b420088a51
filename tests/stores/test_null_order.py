"""Records whose `order` time is NULL are reached by keyset paging.

PostgreSQL sorts NULLs last, and a row comparison with a NULL is NULL, not true: paging with
`(ts, id) > (after_ts, after_id)` alone never showed a record without a time once a page ended
on the last record with one (the connection said `hasNextPage: false`), while the export holds
them. `page_sql` now reads past a position in branches (`after_position`); a company's time
columns are often nullable, and a view's columns always are.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import pytest

from schema import cursors
from stores.mapping import Position
from stores.postgres import MappedCategory, introspect
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import snapshot


async def test_paging_reaches_every_record_the_export_holds(stores: Stores) -> None:
    analytics = stores.postgres("web_analytics")
    owner = await asyncpg.connect(stores.config.store(analytics.name).dsn)
    try:
        # The company's events, some without a time (a nullable column, as many are).
        await owner.execute(
            "CREATE OR REPLACE VIEW null_time_events AS SELECT anonymous_id, "
            "CASE WHEN id % 3 = 0 THEN NULL ELSE ts END AS ts, id, session_id, url, event_type, "
            "element, referrer, duration_ms FROM page_events"
        )
        types = await introspect(analytics.pool, {"null_time_events"})
        base = analytics.categories["web_analytics"]
        cat = MappedCategory(
            base.category, dataclasses.replace(base.mapped, table="null_time_events"), types
        )
        alice = await stores.person_of(subject_id("alice"))
        assert alice is not None

        async with snapshot(analytics) as snap:
            args: list[Any] = []
            exported = [r["id"] for r in await snap.conn.fetch(cat.records_sql(alice, args), *args)]
        assert any(int(i) % 3 == 0 for i in exported)

        # GraphQL's paging: `first: 2`, then `after` the last record's position, until the
        # connection says there is no next page.
        paged: list[Any] = []
        after: Position | None = None
        while True:
            args = []
            rows = await analytics.pool.fetch(cat.page_sql(alice, args, 3, after), *args)
            paged += [r["id"] for r in rows[:2]]
            if len(rows) <= 2:
                break
            after = tuple(rows[1]["_pos"])
        assert sorted(paged) == sorted(exported)
    finally:
        await owner.execute("DROP VIEW IF EXISTS null_time_events")
        await owner.close()


def test_a_position_with_a_null_survives_its_cursor() -> None:
    # A page that ends on a record without a time hands out a cursor carrying the NULL.
    secret = b"k" * 32
    position: Position = (None, "42")
    assert (
        cursors.decode(secret, "web_analytics", cursors.encode(secret, "web_analytics", position))
        == position
    )
    with pytest.raises(cursors.InvalidCursor):
        cursors.decode(secret, "other", cursors.encode(secret, "web_analytics", position))
