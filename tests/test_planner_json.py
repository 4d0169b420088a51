"""Pages the database writes as JSON (`PostgresStore.page_json`), the planner's way of answering
a connection without a cursor: whatever PostgreSQL writes must be what the executor answers,
byte for byte, for any text, time and number a company's table holds; where it cannot be (an
integer past GraphQL's 32 bits, a time without a Python datetime), the executor answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
from starlette.applications import Starlette

from stores.mapping import JsonPage, Value
from stores.postgres import PostgresStore
from stores.registry import Stores
from stores.seed import subject_id
from tests._planner import both

NODE = "__typename id occurredAt sessionId pageUrl action element referrer durationMs"
EVENTS = (
    "{ me { webAnalytics(first: 100) { __typename edges { __typename node { "
    + NODE
    + " } } pageInfo { hasNextPage __typename } } } }"
)
# Every character below 0x80, quotes and backslashes among them, and some far above it.
TEXT = "".join(chr(i) for i in range(1, 0x80)) + "é€😀\u2028\u2029\ufeff\U0010ffff"
TIMES = [
    "0999-01-02 03:04:05.000001+00",  # a year before 1000 (isoformat pads it)
    "1969-12-31 23:59:59.123456+00",
    "1970-01-01 00:00:00+00",  # no microseconds: none written
    "2024-02-29 12:00:00.5+02",  # another zone: written in UTC
    "2024-02-29 23:59:59.999999-11",
    "0999-01-02 03:04:05+00",  # a whole second before 1000 (to_json's text, padded too)
    "0001-01-01 00:00:00+00",  # the first and last seconds a Python datetime has
    "9999-12-31 23:59:59+00",
    "1850-01-01 00:00:00+00:01:15",  # an offset in seconds (local mean time): still whole
    "2024-02-29 12:00:00+05:30",
]


class Spy:
    """Counts the pages the store writes as JSON; the reads themselves run as they are."""

    def __init__(self, store: PostgresStore) -> None:
        self.calls = 0
        self.inner = store.page_json

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.inner(*args, **kwargs)


@pytest.fixture
async def events(stores: Stores) -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """An owner's connection to alice's events table, and one of her cookie ids; what a test
    adds there is removed after it."""
    analytics = stores.postgres("web_analytics")
    alice = await stores.person_of(subject_id("alice"))
    assert alice is not None and alice.of("anonymous_id")
    owner = await asyncpg.connect(stores.config.store(analytics.name).dsn)
    top = await owner.fetchval("SELECT max(id) FROM page_events")
    try:
        yield owner, alice.of("anonymous_id")[0]
    finally:
        await owner.execute("DELETE FROM page_events WHERE id > $1", top)
        await owner.close()


async def _answers(app: Starlette, query: str) -> tuple[bool, bytes, bytes, int]:
    store = app.state.services.stores.postgres("web_analytics")
    spy = Spy(store)
    store.page_json = spy
    try:
        answers = await both(app, subject_id("alice"), query)
    finally:
        del store.page_json
    return answers.planned, answers.run, answers.executor, spy.calls


async def _written(app: Starlette, query: str) -> bytes:
    """The answer to `query`, planned, its page written by the database once, and the
    executor's byte for byte."""
    planned, run, executor, calls = await _answers(app, query)
    assert planned and calls == 1 and run == executor, query
    return run


async def test_any_text_and_time_is_written_as_the_executor_answers(
    app: Starlette, events: tuple[asyncpg.Connection, str]
) -> None:
    owner, cookie = events
    for n, ts in enumerate(TIMES):
        await owner.execute(
            "INSERT INTO page_events (anonymous_id, ts, session_id, url, event_type, element, "
            "referrer, duration_ms) VALUES ($1, $2::text::timestamptz, $3, $4, $5, $6, NULL, $7)",
            cookie, ts, TEXT, TEXT[n::2], '"\\', "", [-(2**31), 2**31 - 1, 0, None, 7][n % 5],
        )  # fmt: skip
    planned, run, executor, calls = await _answers(app, EVENTS)
    assert planned and calls == 1
    assert run == executor
    edges = orjson.loads(run)["data"]["me"]["webAnalytics"]["edges"]
    written = [e["node"] for e in edges if e["node"]["sessionId"] == TEXT]
    assert [w["occurredAt"] for w in written] == [
        "0001-01-01T00:00:00+00:00",
        "0999-01-02T03:04:05+00:00",
        "0999-01-02T03:04:05.000001+00:00",
        "1849-12-31T23:58:45+00:00",
        "1969-12-31T23:59:59.123456+00:00",
        "1970-01-01T00:00:00+00:00",
        "2024-02-29T06:30:00+00:00",
        "2024-02-29T10:00:00.500000+00:00",
        "2024-03-01T10:59:59.999999+00:00",
        "9999-12-31T23:59:59+00:00",
    ]
    assert {w["pageUrl"] for w in written} == {TEXT[n::2] for n in range(len(TIMES))}


async def test_a_page_and_what_follows_it(app: Starlette) -> None:
    # hasNextPage from the one more record read; an alias; a page of one; a page past the end.
    for first in (1, 2, 100):
        query = (
            f"{{ me {{ w: webAnalytics(first: {first}) {{ pageInfo {{ hasNextPage }} "
            f"e: edges {{ n: node {{ i: id p: pageUrl }} }} }} }} }}"
        )
        run = await _written(app, query)
    page = orjson.loads(run)["data"]["me"]["w"]
    assert page["pageInfo"]["hasNextPage"] is False and page["e"]


@pytest.mark.parametrize(
    ("column", "value"),
    [("id", 3_000_000_000), ("ts", "-infinity"), ("ts", "0001-01-01 00:00:00+01")],
)
async def test_what_json_cannot_write_is_the_executors(
    app: Starlette, events: tuple[asyncpg.Connection, str], column: str, value: Any
) -> None:
    # A record first in order whose value the executor refuses (Int past 32 bits) or that has
    # no Python datetime (infinity, a UTC year 0): the executor's own answer and errors.
    owner, cookie = events
    ts = value if column == "ts" else "1900-01-01 00:00:00+00"
    ident = value if column == "id" else 3_000_000_001
    await owner.execute(
        "INSERT INTO page_events (id, anonymous_id, ts, session_id, url, event_type) "
        "OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3::text::timestamptz, 's', 'u', 'view')",
        ident, cookie, ts,
    )  # fmt: skip
    planned, run, executor, calls = await _answers(app, EVENTS)
    assert calls == 1  # the database was asked to write it, and said it could not
    assert not planned and run == executor
    assert orjson.loads(run)["errors"]


async def test_cursors_are_signed_here_for_the_records_the_database_wrote(
    app: Starlette,
) -> None:
    # The nodes come written, one text each with its position; each edge and its cursor is
    # put together here. Page through alice's events that way, two at a time, to the end.
    after, pages, seen = None, 0, []
    while True:
        args = f'first: 2, after: "{after}"' if after else "first: 2"
        query = (
            f"{{ me {{ webAnalytics({args}) {{ __typename edges {{ __typename c: cursor "
            f"node {{ id }} cursor }} pageInfo {{ endCursor hasNextPage }} }} }} }}"
        )
        run = await _written(app, query)
        page = orjson.loads(run)["data"]["me"]["webAnalytics"]
        seen += [e["node"]["id"] for e in page["edges"]]
        assert all(e["c"] == e["cursor"] for e in page["edges"])
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert pages > 2 and len(seen) == len(set(seen))
    # endCursor alone, and a cursor without its node.
    for query in (
        "{ me { webAnalytics(first: 3) { pageInfo { endCursor } edges { node { id } } } } }",
        "{ me { webAnalytics(first: 3) { edges { cursor } } } }",
    ):
        await _written(app, query)


async def test_a_category_asked_twice_is_read_as_rows(app: Starlette) -> None:
    query = (
        "{ me { a: webAnalytics(first: 3) { edges { node { id } } } "
        "b: webAnalytics(first: 3) { edges { node { pageUrl } } } } }"
    )
    planned, run, executor, calls = await _answers(app, query)
    assert planned and calls == 0 and run == executor, query


@pytest.mark.parametrize("handle", ["alice", "bob", "carol", "dave"])
async def test_a_key_of_the_pages_store_is_found_in_the_same_statement(
    stores: Stores, handle: str
) -> None:
    # The cookie ids are found in the page's own statement: the same values (bob's and carol's
    # shared one left out and counted), the same page, one statement fewer.
    analytics = stores.postgres("web_analytics")
    shape = (("node", (("id", Value("id")), ("url", Value("page_url")))),)
    fused = await stores.person_of(subject_id(handle), all_keys=False)
    apart = await stores.person_of(subject_id(handle), all_keys=False)
    assert fused is not None and apart is not None and "anonymous_id" not in fused.values
    before = analytics.statements
    one = await stores.page_json("web_analytics", fused, JsonPage(3, None, None, shape))
    assert analytics.statements == before + 1
    await stores.ensure(apart, ["anonymous_id"])
    two, found = await analytics.page_json("web_analytics", apart, JsonPage(3, None, None, shape))
    assert analytics.statements == before + 3
    assert (fused.values, fused.shared) == (apart.values, apart.shared)
    assert one == two and found == []
    if handle in ("bob", "carol"):
        assert fused.shared == {"anonymous_id": 1}
    # Found once: the next page reads with the values it has.
    await stores.page_json("web_analytics", fused, JsonPage(3, None, None, shape))
    assert analytics.statements == before + 4


async def test_a_node_whose_fields_are_all_skipped_is_an_empty_object(app: Starlette) -> None:
    for query in (
        "{ me { webAnalytics(first: 2) { edges { node { id @skip(if: true) } } } } }",
        "{ me { webAnalytics(first: 2) { edges { node { ... on WebAnalyticsRecord "
        "{ id @include(if: false) } } } } } }",
    ):
        run = await _written(app, query)
        assert orjson.loads(run)["data"]["me"]["webAnalytics"]["edges"] == [{"node": {}}] * 2


async def test_a_page_without_edges_is_read_as_rows(app: Starlette) -> None:
    # Nothing to write: pageInfo alone, or the connection's __typename, stays the rows' way.
    for query in (
        "{ me { webAnalytics(first: 5) { pageInfo { hasNextPage } } } }",
        "{ me { webAnalytics(first: 5) { __typename } } }",
    ):
        planned, run, executor, calls = await _answers(app, query)
        assert planned and calls == 0 and run == executor, query


async def test_the_record_read_past_the_page_is_not_written(
    app: Starlette, events: tuple[asyncpg.Connection, str]
) -> None:
    # The one more record read to tell whether more follow holds an id GraphQL's Int cannot
    # carry: it is not shown, so the page is still written.
    owner, cookie = events
    alice = await app.state.services.stores.person_of(subject_id("alice"))
    first_two = await owner.fetch(
        "SELECT id FROM page_events WHERE anonymous_id = any($1) ORDER BY ts, id LIMIT 2",
        list(alice.of("anonymous_id")),
    )
    assert len(first_two) == 2
    await owner.execute(
        "INSERT INTO page_events (id, anonymous_id, ts, session_id, url, event_type) "
        "OVERRIDING SYSTEM VALUE SELECT 3000000010, $1, ts, 's', 'u', 'view' "
        "FROM page_events WHERE id = $2",
        cookie, first_two[1]["id"],
    )  # fmt: skip
    query = "{ me { webAnalytics(first: 2) { edges { node { id } } pageInfo { hasNextPage } } } }"
    planned, run, executor, calls = await _answers(app, query)
    assert planned and calls == 1 and run == executor
    assert orjson.loads(run)["data"]["me"]["webAnalytics"]["pageInfo"]["hasNextPage"] is True


async def test_a_page_finding_a_key_holds_up_no_read_of_other_keys(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The events page finds the cookie ids in its own statement, slowed here; the profile
    # (the anchor only) and payment (the billing id, another key) start at once beside it.
    stores: Stores = app.state.services.stores
    started: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    def watch(store: str, slow: float) -> None:
        pool = stores.by_name[store].pool  # type: ignore[union-attr]  # table stores only
        for name in ("fetch", "fetchrow"):
            inner = getattr(pool, name)

            async def timed(*args: Any, _inner: Any = inner, **kwargs: Any) -> Any:
                started.setdefault(store, loop.time())
                await asyncio.sleep(slow)
                return await _inner(*args, **kwargs)

            monkeypatch.setattr(pool, name, timed)

    for store, slow in (("analytics", 0.5), ("app", 0.0), ("billing", 0.0)):
        watch(store, slow)
    query = (
        "{ me { webAnalytics(first: 2) { edges { cursor node { id } } } "
        "profile { firstName } payment { bankName } } }"
    )
    begun = loop.time()
    planned, run, executor, _ = await _answers(app, query)
    assert planned and run == executor
    assert started["analytics"] - begun < 0.1
    # The anchor is read on the app store first; nothing after it waits for the events page.
    assert started["app"] - begun < 0.1 and started["billing"] - begun < 0.4, started


async def test_a_read_that_needs_the_key_being_found_waits_for_it(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the events page finds alice's cookie ids (slowed), her devices' page needs them
    # too: it waits for that statement and reads with what it found, not finding them again.
    analytics = stores.postgres("web_analytics")
    inner = analytics.pool.fetchrow

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await inner(*args, **kwargs)

    monkeypatch.setattr(analytics.pool, "fetchrow", slow)
    shape = (("node", (("id", Value("id")),)),)
    person = await stores.person_of(subject_id("alice"), all_keys=False)
    whole = await stores.person_of(subject_id("alice"))
    assert person is not None and whole is not None
    before = analytics.statements
    page = asyncio.create_task(
        stores.page_json("web_analytics", person, JsonPage(2, None, None, shape))
    )
    await asyncio.sleep(0.05)
    assert "anonymous_id" in person.pending
    devices = await stores.page("device", person, 5, None)
    assert page.done() and not person.pending
    assert analytics.statements == before + 2  # the page, then the devices: no third
    assert devices == await stores.page("device", whole, 5, None)
    assert person.values["anonymous_id"] == whole.values["anonymous_id"]


async def test_a_key_said_pending_while_a_read_waited_for_the_lock_is_not_found_twice(
    stores: Stores,
) -> None:
    # The order a page and a read can meet in: the read waits for the lock, the page takes
    # it first and says it is finding the cookie ids; the read then waits for the page.
    analytics = stores.postgres("web_analytics")
    whole = await stores.person_of(subject_id("alice"))
    person = await stores.person_of(subject_id("alice"), all_keys=False)
    assert person is not None and whole is not None
    before = analytics.statements
    await person.lock.acquire()
    read = asyncio.create_task(stores.ensure(person, ["anonymous_id"]))
    await asyncio.sleep(0.01)  # the read now waits for the lock
    done = asyncio.get_running_loop().create_future()
    person.pending["anonymous_id"] = done
    person.lock.release()
    await asyncio.sleep(0.01)
    assert not read.done()  # it waits for the page, not finding the key itself
    person.values["anonymous_id"] = whole.values["anonymous_id"]
    del person.pending["anonymous_id"]
    done.set_result(None)
    await read
    assert analytics.statements == before


def test_a_shapes_text_is_built_once_and_the_kept_ones_are_bounded(stores: Stores) -> None:
    """`MappedCategory.shape_sql`: a planned document asks for the same shape at every request;
    its SQL is built once and kept, at most `SHAPES_KEPT` shapes a category."""
    from stores.postgres import SHAPES_KEPT, json_shape

    cat = stores.postgres("web_analytics").categories["web_analytics"]
    shape = (("node", (("id", Value("id")), ("url", Value("page_url", required=True)))),)
    first = cat.shape_sql(shape)
    assert first == json_shape(shape, cat.category)
    assert cat.shape_sql(shape) is first  # kept, not built again
    for n in range(SHAPES_KEPT + 10):
        cat.shape_sql((("node", ((f"a{n}", Value("id")),)),))
    assert len(cat._shapes) == SHAPES_KEPT
    with pytest.raises(ValueError):  # a bad shape is refused each time, never kept
        cat.shape_sql((("node", (("not a name", Value("id")),)),))


@pytest.mark.parametrize("handle", ["alice", "bob", "carol", "dave"])
async def test_pages_of_one_store_come_in_one_statement(stores: Stores, handle: str) -> None:
    """`Stores.pages_json`: a subject's pages of one store (the analytics' three categories)
    in one statement that also finds their cookie ids once: the same pages, and the same keys
    found and counted as shared, as reading them one by one; the next ones, with keys known,
    in one statement too; none for a person lacking the key."""
    analytics = stores.postgres("web_analytics")
    keys = [k for k, c in analytics.categories.items() if stores.writes_json(k)]
    assert len(keys) >= 3

    def asked(after: dict[str, Any] | None = None) -> list[tuple[str, JsonPage]]:
        out = []
        for n, key in enumerate(keys):
            fields = [f.name for f in analytics.categories[key].category.fields if not f.withheld]
            shape = (("node", tuple((name, Value(name)) for name in fields[:3])),)
            position = (after or {}).get(key)
            out.append((key, JsonPage(2 + n, position, None, shape, positions=n % 2 == 0)))
        return out

    fused = await stores.person_of(subject_id(handle), all_keys=False)
    apart = await stores.person_of(subject_id(handle), all_keys=False)
    assert fused is not None and apart is not None and "anonymous_id" not in fused.values
    before = analytics.statements
    together = await stores.pages_json(asked(), fused)
    assert analytics.statements == before + 1
    one_by_one = [await stores.page_json(key, apart, page) for key, page in asked()]
    assert together == one_by_one
    assert (fused.values, fused.shared) == (apart.values, apart.shared)
    pages = zip(asked(), together, strict=True)
    after = {key: page.positions[-1] for (key, _), page in pages if page.positions}
    before = analytics.statements
    later = await stores.pages_json(asked(after), fused)
    assert analytics.statements == before + 1
    assert later == [await stores.page_json(key, apart, page) for key, page in asked(after)]
    assert any(w.text or w.objects for w in together) == (handle != "dave")  # no events
    nobody = dataclasses.replace(fused, values={**fused.values, "anonymous_id": ()})
    before = analytics.statements
    assert not any(w.text or w.objects for w in await stores.pages_json(asked(), nobody))
    assert analytics.statements == before
