"""A `timestamp` field read from a column without a time zone (`timestamp without time zone`
and `date` are allowed) is the same instant in every channel.

The export's snapshot reads it under `SET LOCAL TimeZone = 'UTC'` (stores/streams.py
SNAPSHOT_SETTINGS), and the store pools that answer GraphQL, the account page and counts read
in UTC too (stores/pool.py): on a database whose TimeZone is not UTC (initdb takes the host's
zone) the same record was disclosed at two different instants, hours apart.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import asyncpg
import orjson

from catalogue import Catalogue
from stores.postgres import PostgresStore
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import snapshot

VIEW = "naive_events"


async def test_a_naive_timestamp_is_the_same_instant_in_graphql_and_in_the_export(
    stores: Stores, catalogue: Catalogue
) -> None:
    analytics = stores.postgres("web_analytics")
    dsn = stores.config.store(analytics.name).dsn
    owner = await asyncpg.connect(dsn)
    try:
        # The company's events with their time as a plain `timestamp` (wall clock in UTC).
        await owner.execute(
            "CREATE OR REPLACE VIEW naive_events AS SELECT anonymous_id, "
            "(ts AT TIME ZONE 'UTC') AS ts, id, session_id, url, event_type, element, referrer, "
            "duration_ms FROM page_events"
        )
        mapped = dataclasses.replace(stores.config.categories["web_analytics"], table=VIEW)
        config = dataclasses.replace(
            stores.config, categories={**stores.config.categories, "web_analytics": mapped}
        )
        # A database whose TimeZone is not UTC (set here per connection, as a DSN can).
        sep = "&" if "?" in dsn else "?"
        store = await PostgresStore.open(
            analytics.name, f"{dsn}{sep}TimeZone=America%2FNew_York", config, catalogue
        )
        try:
            person = await stores.person_of(subject_id("alice"))
            assert person is not None
            # What GraphQL (both the planner and the executor) and the account page read.
            page = await store.page("web_analytics", person, 5, None)
            assert page
            shown = [(r["id"], r["occurred_at"]) for r in page]
            # What the export's data/web_analytics.json holds for the same records.
            async with snapshot(store) as snap:
                stream = snap.json_lines("web_analytics", person, limit=5)
                lines = b"".join([c async for c in stream]).splitlines()
            exported = [orjson.loads(line) for line in lines]
            in_export = [(int(r["id"]), datetime.fromisoformat(r["occurred_at"])) for r in exported]
            assert shown == in_export
        finally:
            await store.close()
    finally:
        await owner.execute("DROP VIEW IF EXISTS naive_events")
        await owner.close()
