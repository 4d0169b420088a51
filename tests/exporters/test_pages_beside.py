"""The web pages read beside the data file (`Snapshot.beside`, exporters/bundle.py `_Ahead`)
show what the data file shows in every kind of copy, and a store that cannot share its
snapshot, or that ends idle transactions, still gets whole bundles.

Found by review of 157e71a, each failing there: a delta's pages showed every record (the
snapshot beside was taken before `since` was set), a released copy's pages showed "Held, not
shown" for values its data file holds, a delta whose first category had nothing new failed
(its pages' COPY was cancelled, aborting the transaction beside for the next categories), a
store whose reader may not call pg_export_snapshot() failed (the refusal aborted the export's
own transaction), and a server ending idle transactions killed the connection beside while a
data file streamed to a slow client.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from datetime import timedelta

import asyncpg
import orjson
import pytest

from catalogue import Catalogue
from exporters.facts import Release
from stores.deployment import Deployment
from stores.registry import Stores
from stores.roles import with_user
from stores.seed import EPOCH
from stores.streams import Snapshot
from tests.exporters.conftest import Bundle, bundle_of, make_bundle, new_subject


@asynccontextmanager
async def _none(self: Snapshot) -> AsyncIterator[None]:
    yield None


def _pages(b: Bundle) -> dict[str, bytes]:
    return {n: body for n, body in b.files.items() if n.startswith("pages/")}


async def test_a_delta_bundles_pages_show_what_its_data_file_shows(
    stores: Stores, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """since= (a delta, as every partner transfer after the first): pages must hold only the
    records the data file holds, as they did when read after it on the same snapshot."""
    subject = await new_subject(stores, catalogue, events=1_200)
    since = EPOCH + timedelta(seconds=7 * 1_000)  # the last 199 events are after it
    beside = await make_bundle(stores, catalogue, subject.id, "json", since=since)
    data = orjson.loads(beside.files["data/web_analytics.json"])
    assert len(data) == 199
    monkeypatch.setattr(Snapshot, "beside", _none)
    after = await make_bundle(stores, catalogue, subject.id, "json", since=since)
    assert _pages(after) == _pages(beside)
    assert len([n for n in _pages(beside) if "web_analytics" in n]) == 1  # 199 records


async def test_a_released_copys_pages_show_the_released_values(
    stores: Stores, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GDPR own copy releases sensitive.value: the data file holds the numbers, and so must
    the pages (they did when read after the data file)."""
    subject = await new_subject(stores, catalogue)
    rule = catalogue.release_rules[0]
    fields = {c.key: rule.fields_of(c.key) for c in catalogue if rule.fields_of(c.key)}
    release = Release(rule, fields, "test")
    beside = await make_bundle(stores, catalogue, subject.id, "json", release=release)
    ssn = subject.rows["sensitive"][0]["value"]
    assert ssn.encode() in beside.files["data/sensitive.json"]
    monkeypatch.setattr(Snapshot, "beside", _none)
    after = await make_bundle(stores, catalogue, subject.id, "json", release=release)
    assert ssn.encode() in after.files["pages/sensitive-1.html"]  # as before the commit
    assert ssn.encode() in beside.files["pages/sensitive-1.html"], "released value missing"


async def test_a_category_with_nothing_new_does_not_spoil_the_next_ones_pages(
    stores: Stores, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delta in which web_analytics has nothing new (its data file is empty) but geolocation
    has: the bundle must finish and hold geolocation's page, as it does with the pages read
    after each data file."""
    subject = await new_subject(stores, catalogue, events=20_000)
    later = EPOCH + timedelta(days=200)
    geo = [
        dict(r, observed_at=later + timedelta(days=i))
        for i, r in enumerate(subject.rows["geolocation"])
    ]
    subject = await new_subject(stores, catalogue, events=20_000, geolocation=geo)
    since = EPOCH + timedelta(days=10)  # after every web event (20,000 x 7 s = 1.6 days)
    monkeypatch.setattr(Snapshot, "beside", _none)
    after = await make_bundle(stores, catalogue, subject.id, "json", since=since)
    assert after.manifest["categories"]["web_analytics"]["records"] == 0
    assert "pages/geolocation-1.html" in after.files
    monkeypatch.undo()
    beside = await make_bundle(stores, catalogue, subject.id, "json", since=since)
    assert "pages/geolocation-1.html" in beside.files


async def test_a_store_that_may_not_export_snapshots_still_exports(
    deployment: Deployment, stores: Stores, catalogue: Catalogue
) -> None:
    subject = await new_subject(stores, catalogue, events=100)
    name = stores.postgres("web_analytics").name
    dsn = stores.config.store(name).dsn
    role = f"rv_reader_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(dsn)
    db = await admin.fetchval("SELECT current_database()")
    grants = (
        f'CREATE ROLE {role} LOGIN; GRANT CONNECT ON DATABASE "{db}" TO {role}; '
        f"GRANT USAGE ON SCHEMA public TO {role}; "
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; "
    )
    # The reader may read the tables, not export a snapshot.
    await admin.execute(grants + "REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC")
    config = deployment.stores
    config = replace(
        config,
        stores=tuple(
            replace(s, dsn=with_user(dsn, role)) if s.name == name else s for s in config.stores
        ),
    )
    own = await Stores.open(config, catalogue, deployment.service_dsn)
    try:
        b = await make_bundle(own, catalogue, subject.id, "json")
        assert b.manifest["categories"]["web_analytics"]["records"] == 100
        assert "pages/web_analytics-1.html" in b.files
    finally:
        await own.close()
        await admin.execute(
            "GRANT EXECUTE ON FUNCTION pg_export_snapshot() TO PUBLIC; "
            f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}; "
            f"REVOKE ALL ON SCHEMA public FROM {role}; "
            f'REVOKE ALL ON DATABASE "{db}" FROM {role}; DROP ROLE {role}'
        )
        await admin.close()


async def _copying(admin: asyncpg.Connection) -> bool:
    """The data file of web_analytics is streaming (its COPY is on the server)."""
    return bool(
        await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query LIKE 'COPY (SELECT r.%page_events%'"
        )
    )


async def _sits_idle(admin: asyncpg.Connection, seconds: float, within: float) -> bool:
    """A transaction on the store sits idle for longer than `seconds`, seen within `within`."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'idle in transaction' AND now() - state_change > $1 * interval '1 s'"
    )
    with suppress(TimeoutError):
        async with asyncio.timeout(within):
            while not await admin.fetchval(query, seconds):  # noqa: ASYNC110  # the server is polled
                await asyncio.sleep(0.1)
            return True
    return False


async def test_a_slow_client_on_a_server_that_ends_idle_transactions(
    deployment: Deployment, stores: Stores, catalogue: Catalogue
) -> None:
    """The client pauses mid data file for longer than the server lets a transaction sit idle:
    the connection beside (its pages read) waits meanwhile, and the data file's COPY waits on
    its reader. (Before the exports' connections fixed their receive buffer, `stores/pool.py`,
    loopback's grew to 32 MB, and the 23 MB file could end during the pause, as in CI.)"""
    heavy = await new_subject(stores, catalogue, events=200_000)
    dsn = stores.config.store(stores.postgres("web_analytics").name).dsn
    admin = await asyncpg.connect(dsn)
    name = await admin.fetchval("SELECT current_database()")
    await admin.execute(f'ALTER DATABASE "{name}" SET idle_in_transaction_session_timeout = 1000')
    own = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
    try:
        body = bytearray()
        paused = False
        async for chunk in bundle_of(own, catalogue, heavy.id, "csv"):
            body += chunk
            if not paused and await _copying(admin):  # mid web_analytics data file
                paused = True
                # The client's network is slow for a moment: a transaction of the export sits
                # idle past the server's limit (1 s), and is not ended.
                assert await _sits_idle(admin, 1.5, within=5)
                assert await _copying(admin)  # the data file's COPY is still there
        assert paused
        b = Bundle(bytes(body))
        assert "pages/geolocation-1.html" in b.files
    finally:
        await own.close()
        await admin.execute(f'ALTER DATABASE "{name}" RESET idle_in_transaction_session_timeout')
        await admin.close()
