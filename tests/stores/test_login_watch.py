"""Logins' subjects served from memory (`LoginWatch`): only while a connection listens for the
service database's word of every change, in every process at once, and nothing kept across a
lost connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import subject_id
from stores.subjects import LoginWatch, Subjects
from tests._factories import linked_person
from tests._tokens import TEST_ISSUER

Login = tuple[UUID | None, str | None]


async def _watching(deployment: Deployment, catalogue: Catalogue) -> Stores:
    """A server's stores: its own pools and its own listening connection."""
    s = await Stores.open(deployment.stores, catalogue, deployment.service_dsn, watch_logins=True)
    assert s.subjects.watch is not None
    assert await s.subjects.watch.listening(), "the login watch never listened"
    return s


@pytest.fixture
async def servers(deployment: Deployment, catalogue: Catalogue) -> AsyncIterator[list[Stores]]:
    """Two servers' stores on one service database, as two `dsar serve` processes have."""
    both = [await _watching(deployment, catalogue), await _watching(deployment, catalogue)]
    yield both
    for s in both:
        await s.close()


def _watch(s: Stores) -> LoginWatch:
    assert s.subjects.watch is not None
    return s.subjects.watch


async def _becomes(read: Callable[[], Awaitable[Login]], expected: Login) -> Login:
    """What `read` gives once it gives `expected`, or after 3 s (a notice takes milliseconds;
    a kept entry would be served for `LOGIN_TTL`, 60 s)."""
    got = await read()
    for _ in range(60):
        if got == expected:
            break
        await asyncio.sleep(0.05)
        got = await read()
    return got


async def _anchor(owner_db: asyncpg.Pool, subject: UUID) -> str:
    anchor = await owner_db.fetchval("SELECT anchor FROM subjects WHERE id = $1", subject)
    assert isinstance(anchor, str)
    return anchor


async def _until(done: Callable[[], bool], within: float) -> bool:
    for _ in range(int(within / 0.02)):
        if done():
            return True
        await asyncio.sleep(0.02)
    return done()


async def _linked(
    stores: Stores, catalogue: Catalogue, prefix: str, octet: int, *watches: LoginWatch
) -> str:
    """A new person's login, linked, once every watch has heard of the link (its notices come
    apart from the statements' answers, and would forget what a lookup kept before them)."""
    handle = await linked_person(stores, catalogue, TEST_ISSUER, prefix, octet)
    for w in watches:
        await w.caught_up()
    return handle


async def test_every_process_hears_a_login_moved_or_removed(
    servers: list[Stores], stores: Stores, catalogue: Catalogue, owner_db: asyncpg.Pool
) -> None:
    handle = await _linked(stores, catalogue, "watch", 71, *map(_watch, servers))
    mine = subject_id(handle)
    first = (mine, await _anchor(owner_db, mine))
    for s in servers:
        assert await s.subjects.login(TEST_ISSUER, handle) == first
    # Asked again, each serves it from memory: no statement.
    for s in servers:
        hits = _watch(s).hits
        assert await s.subjects.login(TEST_ISSUER, handle) == first
        assert _watch(s).hits == hits + 1
    # An operator moves the login to another subject, outside either process.
    bob = subject_id("bob")
    moved = (bob, await _anchor(owner_db, bob))
    await owner_db.execute(
        "UPDATE identity_links SET subject_id = $1 WHERE issuer = $2 AND sub = $3",
        bob,
        TEST_ISSUER,
        handle,
    )
    for s in servers:

        async def read(s: Stores = s) -> Login:
            return await s.subjects.login(TEST_ISSUER, handle)

        assert await _becomes(read, moved) == moved
    # And removes it: no process names any subject for it any more.
    await owner_db.execute(
        "DELETE FROM identity_links WHERE issuer = $1 AND sub = $2", TEST_ISSUER, handle
    )
    for s in servers:

        async def gone(s: Stores = s) -> Login:
            return await s.subjects.login(TEST_ISSUER, handle)

        assert await _becomes(gone, (None, None)) == (None, None)
        assert await s.subjects.for_login(TEST_ISSUER, handle) is None


async def test_nothing_is_served_from_memory_while_the_watch_does_not_listen(
    servers: list[Stores], stores: Stores, catalogue: Catalogue, owner_db: asyncpg.Pool
) -> None:
    s = servers[0]
    watch = _watch(s)
    watch.retry_after = 1.5  # down that long once cut
    handle = await _linked(stores, catalogue, "deaf", 72, watch)
    mine = subject_id(handle)
    first = (mine, await _anchor(owner_db, mine))
    assert await s.subjects.login(TEST_ISSUER, handle) == first
    assert len(watch) >= 1
    # The listening connection is cut (a restart, a network fault, an administrator).
    assert watch.connection is not None
    backend = watch.connection.get_server_pid()
    assert await owner_db.fetchval("SELECT pg_terminate_backend($1)", backend)
    assert await _until(lambda: not watch.live, 2.0)
    assert len(watch) == 0  # everything it kept is forgotten
    # A change made while nobody listens is read at once: nothing is served from memory.
    bob = subject_id("bob")
    await owner_db.execute(
        "UPDATE identity_links SET subject_id = $1 WHERE issuer = $2 AND sub = $3",
        bob,
        TEST_ISSUER,
        handle,
    )
    hits = watch.hits
    assert await s.subjects.login(TEST_ISSUER, handle) == (bob, await _anchor(owner_db, bob))
    assert watch.hits == hits
    assert not watch.live  # (all of that well inside its 1.5 s down)
    # It listens again, on a new connection, and keeps logins again.
    assert await watch.listening(within=10)
    assert watch.connection is not None and watch.connection.get_server_pid() != backend
    assert await s.subjects.login(TEST_ISSUER, handle) == (bob, await _anchor(owner_db, bob))
    assert await s.subjects.login(TEST_ISSUER, handle) == (bob, await _anchor(owner_db, bob))
    assert watch.hits == hits + 1


async def test_a_connection_that_no_longer_hears_is_given_up(
    deployment: Deployment, stores: Stores, catalogue: Catalogue
) -> None:
    # Open and answering, yet deaf (a pooler that does not pass notices on, a primary left
    # behind by a failover): its probe is not heard, and nothing is served from memory.
    watch = LoginWatch(
        deployment.service_dsn,
        stores.subjects.pool,
        probe_every=0.2,
        probe_budget=0.5,
        retry_after=0.1,
    )
    watch.start()
    try:
        subjects = Subjects(stores.subjects.pool, watch)
        assert await watch.listening()
        handle = await _linked(stores, catalogue, "probe", 73, watch)
        await subjects.login(TEST_ISSUER, handle)
        await asyncio.sleep(0.6)  # probes sent and heard: it stays
        assert watch.live and len(watch) == 1
        assert watch.connection is not None
        deaf = watch.connection
        await deaf.execute("UNLISTEN *")
        assert await _until(lambda: not watch.live, 2.0)  # a probe and its 0.5 s
        assert len(watch) == 0
        assert deaf.is_closed()
        assert await watch.listening(within=10)
    finally:
        await watch.close()


async def test_a_lookup_that_read_before_a_change_is_not_kept(
    servers: list[Stores], stores: Stores, catalogue: Catalogue, owner_db: asyncpg.Pool
) -> None:
    s = servers[0]
    watch = _watch(s)
    handle = await _linked(stores, catalogue, "race", 74, watch)
    mine, bob = subject_id(handle), subject_id("bob")
    real = s.subjects.pool

    class Late:
        """The pool, but the login is moved (and the move heard) after its lookup read."""

        async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
            row = await real.fetchrow(query, *args)
            heard = watch.generation
            await owner_db.execute(
                "UPDATE identity_links SET subject_id = $1 WHERE issuer = $2 AND sub = $3",
                bob,
                TEST_ISSUER,
                handle,
            )
            assert await _until(lambda: watch.generation != heard, 2.0)
            return row

    s.subjects.pool = Late()  # type: ignore[assignment]
    try:
        stale = await s.subjects.login(TEST_ISSUER, handle)
    finally:
        s.subjects.pool = real
    assert stale[0] == mine  # what it read, before the move
    assert await s.subjects.login(TEST_ISSUER, handle) == (bob, await _anchor(owner_db, bob))


async def test_an_anchor_changed_is_heard(
    servers: list[Stores], stores: Stores, catalogue: Catalogue, owner_db: asyncpg.Pool
) -> None:
    s = servers[0]
    handle = await _linked(stores, catalogue, "anchor", 75, _watch(s))
    mine = subject_id(handle)
    anchor = await _anchor(owner_db, mine)
    assert await s.subjects.login(TEST_ISSUER, handle) == (mine, anchor)
    await owner_db.execute("UPDATE subjects SET anchor = $2 WHERE id = $1", mine, anchor + "0")

    async def read() -> Login:
        return await s.subjects.login(TEST_ISSUER, handle)

    assert await _becomes(read, (mine, anchor + "0")) == (mine, anchor + "0")


def test_a_lookup_that_began_before_a_change_is_not_kept() -> None:
    watch = LoginWatch("postgresql://unused")
    login = (uuid4(), "1001")
    watch.put("issuer", "sub", login, watch.generation)
    assert watch.get("issuer", "sub") is None  # not listening: nothing kept, nothing served
    watch.live = True
    began = watch.generation
    watch._heard()  # a change heard while the lookup's statement ran
    watch.put("issuer", "sub", login, began)
    assert watch.get("issuer", "sub") is None
    watch.put("issuer", "sub", login, watch.generation)
    assert watch.get("issuer", "sub") == login


def test_it_keeps_a_bounded_number_for_a_bounded_time() -> None:
    brief = LoginWatch("postgresql://unused", size=2, ttl=0.0)
    brief.live = True
    brief.put("i", "a", (uuid4(), None), brief.generation)
    assert brief.get("i", "a") is None  # past its time
    watch = LoginWatch("postgresql://unused", size=2, ttl=60.0)
    watch.live = True
    for sub in "abc":
        watch.put("i", sub, (uuid4(), None), watch.generation)
    assert len(watch) == 2
    assert watch.get("i", "a") is None  # the oldest went first
    assert watch.get("i", "c") is not None


async def test_a_servers_requests_name_their_login_from_memory(
    app: Starlette, client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    watch = _watch(app.state.services.stores)
    assert await watch.listening()
    token = issuer.mint("customer", "alice")
    answers = []
    for _ in range(2):
        r = await client.post(
            "/graphql",
            json={"query": "{ me { id } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        answers.append(r.json())
    assert answers[0] == answers[1] == {"data": {"me": {"id": str(subject_id("alice"))}}}
    assert watch.hits == 1  # the second request's login was not asked of the database


async def test_whatever_ends_its_connection_the_watch_goes_on(
    deployment: Deployment, stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, failed = asyncpg.connect, list[bool]()

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        if not failed:  # the first attempt fails as no OSError or PostgresError does
            failed.append(True)
            raise asyncpg.exceptions.ProtocolError("unexpected message")
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncpg, "connect", connect)
    watch = LoginWatch(deployment.service_dsn, stores.subjects.pool, retry_after=0.1)
    watch.start()
    try:
        assert await watch.listening(within=10)
        assert failed
    finally:
        await watch.close()
    assert watch.connection is None and not watch.live
