"""Subjects: dsar's own id for each person, one per anchor value, and the logins linked to it.

These live in the service database (dsar's own), never in a company's store: the company's
systems are read, never written. A subject row is made the first time a person is named by
their anchor value (a support look-up, a link, an export on the command line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from cachetools import TTLCache

from stores.pool import CONNECT_TIMEOUT, server_settings
from stores.scope import Scope, scoped
from stores.streams import stop_task

log = logging.getLogger("dsar.stores")

# Where the service database says a login's subject or a subject's anchor changed
# (0021_login_changes.sql): every process listening forgets what it remembered of logins.
CHANNEL = "dsar_logins"
# Where a process checks that it still hears the database: a notice it sends through its pool,
# a random token for payload, which the listening connection must hear within `PROBE_BUDGET`.
PROBE_CHANNEL = "dsar_logins_probe"
LOGINS_KEPT = 10_000
# How long a login's subject is served from memory at most, even with the database's word that
# nothing changed: a backstop for changes made with triggers off (a restore, a replica).
LOGIN_TTL = 60.0
PROBE_EVERY = 5.0
PROBE_BUDGET = 2.0  # a pool's wait for a free connection included (stores/pool.py)
RETRY_AFTER = 2.0  # a lost listening connection is opened again after this

Login = tuple[UUID, str | None]  # a login's subject and that subject's anchor value


class LoginWatch:
    """The subject (and its anchor) of each login seen lately, served from memory while a
    connection of its own LISTENs to the service database's word of every change to the
    logins and anchors (`CHANNEL`, from triggers on `identity_links` and `subjects`).

    Every request with a token names its login; without this, each asked the service database
    (`dsar_subject_for_login`): a round trip and about 0.13 ms of the database's CPU and 0.15 ms
    of the server's per request (issue 19). Every process keeps its own and each hears every
    change with its commit, so a login moved to another subject, or a subject removed, is served
    so by every process within milliseconds. Nothing is served from memory unless the connection
    listens and hears: every `PROBE_EVERY` seconds a notice sent through `pool` must reach it
    within `PROBE_BUDGET` (a connection silently cut, or one that no longer hears what others
    send, is found so within 7 s); when it is lost everything is forgotten and every login asked
    for again until it listens anew. Only logins found are kept; `LOGIN_TTL` bounds the age of
    any entry.
    """

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool | None = None,
        *,
        size: int = LOGINS_KEPT,
        ttl: float = LOGIN_TTL,
        probe_every: float = PROBE_EVERY,
        probe_budget: float = PROBE_BUDGET,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        self.dsn = dsn
        self.pool = pool  # the probes' way in; without one, the watch is never started
        self.probe_every = probe_every
        self.probe_budget = probe_budget
        self.retry_after = retry_after
        self.live = False  # listening: only then is anything served from memory
        self.generation = 0  # moves on at every change heard and every loss
        self.hits = 0
        self.connection: asyncpg.Connection | None = None  # the listening one
        # Least recently used first out; none older than `ttl`.
        self._entries: TTLCache[tuple[str, str], Login] = TTLCache(size, ttl, timer=time.monotonic)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._probes: dict[str, asyncio.Event] = {}  # tokens sent, not heard yet

    def __len__(self) -> int:
        return len(self._entries)

    def start(self) -> None:
        assert self.pool is not None, "a watch probes through its pool"
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dsar login watch")

    async def listening(self, within: float = CONNECT_TIMEOUT) -> bool:
        """Waits until the watch listens (at most `within` s); False when it does not."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), within)
        return self.live

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)  # whatever ended it; a cancelled caller still is

    def get(self, issuer: str, sub: str) -> Login | None:
        if not self.live:
            return None
        login = self._entries.get((issuer, sub))
        if login is not None:
            self.hits += 1
        return login

    def put(self, issuer: str, sub: str, login: Login, generation: int) -> None:
        """Keeps what a lookup begun at `generation` found, unless a change was heard (or the
        connection lost) since it began: what it read may be what that change replaced."""
        if not self.live or generation != self.generation:
            return
        self._entries[(issuer, sub)] = login

    def forget(self) -> None:
        self.generation += 1
        self._entries.clear()

    def _heard(self, *_: object) -> None:
        self.forget()

    def _probed(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        heard = self._probes.get(str(payload))
        if heard is not None:  # another process's probe is none of this one's business
            heard.set()

    def _lost(self) -> None:
        self.live = False
        self._listening.clear()
        self.forget()

    async def caught_up(self) -> None:
        """Returns once every notice committed before the call has been heard (PostgreSQL
        delivers a listener's notices in the order of their commits): a notice sent through
        the pool with a random token comes back. Raises TimeoutError unless it comes back
        within `probe_budget` seconds."""
        assert self.pool is not None
        token, heard = secrets.token_hex(16), asyncio.Event()
        self._probes[token] = heard
        try:
            async with asyncio.timeout(self.probe_budget):
                await self.pool.execute("SELECT pg_notify($1, $2)", PROBE_CHANNEL, token)
                await heard.wait()
        finally:
            del self._probes[token]

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            ended = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=CONNECT_TIMEOUT, server_settings=server_settings(self.dsn)
                )
                conn.add_termination_listener(lambda _c, e=ended: e.set())  # this one's own event
                await conn.add_listener(CHANNEL, self._heard)  # LISTEN, answered: listening
                await conn.add_listener(PROBE_CHANNEL, self._probed)
                self.connection = conn
                self.forget()  # nothing kept from before: changes made then were not heard
                self.live = True
                self._listening.set()
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ended.wait(), self.probe_every)
                    if ended.is_set():
                        raise ConnectionError("the listening connection ended")
                    await self.caught_up()  # or TimeoutError: deaf
            except Exception as exc:  # whatever ends it, the watch goes on
                log.warning("login watch lost its connection", extra={"error": type(exc).__name__})
            finally:
                self._lost()
                self.connection = None
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(self.retry_after)


@dataclass(frozen=True, slots=True)
class RecordedJurisdiction:
    """A subject's jurisdiction as recorded (catalogue [jurisdictions] keys)."""

    key: str
    source: str  # unknown, stores, declared or conflict
    declared: str | None  # what the person declared, if they ever did
    at: datetime | None  # when it was last settled


class Subjects:
    def __init__(self, pool: asyncpg.Pool, watch: LoginWatch | None = None) -> None:
        self.pool = pool
        self.watch = watch  # logins served from memory while it listens (`dsar serve`)

    async def for_login(self, issuer: str, sub: str) -> UUID | None:
        return (await self.login(issuer, sub))[0]

    async def login(self, issuer: str, sub: str) -> tuple[UUID | None, str | None]:
        """The login's subject and its anchor value, in one round trip (both functions bind
        their own scope inside the statement: 0020_bound_lookups.sql), or from `watch`."""
        watch = self.watch
        if watch is not None:
            kept = watch.get(issuer, sub)
            if kept is not None:
                return kept
            generation = watch.generation
        row = await self.pool.fetchrow(
            "SELECT s, CASE WHEN s IS NOT NULL THEN dsar_anchor_of(s) END "
            "FROM dsar_subject_for_login($1, $2) AS s",
            issuer,
            sub,
        )
        if row is None or not isinstance(row[0], UUID):
            return None, None
        found = (row[0], row[1] if isinstance(row[1], str) else None)
        if watch is not None:
            watch.put(issuer, sub, found, generation)
        return found

    async def anchor_of(self, subject_id: UUID) -> str | None:
        # Bound to the subject inside the one statement, as for_login (0020_bound_lookups.sql).
        row = await self.pool.fetchval("SELECT dsar_anchor_of($1)", subject_id)
        return row if isinstance(row, str) else None

    async def by_handle(self, handle: str) -> UUID | None:
        async with scoped(self.pool, scope=Scope.SUBJECTS) as conn:
            row = await conn.fetchval("SELECT id FROM subjects WHERE handle = $1", handle)
        return row if isinstance(row, UUID) else None

    async def ids_for(self, anchors: list[str]) -> list[UUID]:
        """The subject of each anchor value, in order, made where there is none yet."""
        if not anchors:
            return []
        async with scoped(self.pool, scope=Scope.SUBJECTS) as conn:
            await conn.execute(
                "INSERT INTO subjects (id, anchor) SELECT * FROM unnest($1::uuid[], $2::text[]) "
                "ON CONFLICT (anchor) DO NOTHING",
                [uuid.uuid4() for _ in anchors],
                anchors,
            )
            rows = await conn.fetch(
                "SELECT anchor, id FROM subjects WHERE anchor = any($1::text[])", anchors
            )
        found = {r["anchor"]: r["id"] for r in rows}
        return [found[a] for a in anchors]

    async def link(self, subject_id: UUID, issuer: str, sub: str) -> None:
        # A login may move to another subject: the row it leaves is found by the login.
        async with scoped(self.pool, subject=subject_id, scope=Scope.LOGIN) as conn:
            await conn.execute(
                "INSERT INTO identity_links (issuer, sub, subject_id) VALUES ($1, $2, $3) "
                "ON CONFLICT (issuer, sub) DO UPDATE SET subject_id = excluded.subject_id",
                issuer,
                sub,
                subject_id,
            )
        if self.watch is not None:
            self.watch.forget()  # heard soon from the database too; here at once

    async def jurisdiction(self, subject_id: UUID) -> RecordedJurisdiction | None:
        """The recorded jurisdiction (None for no such subject); UNKNOWN until settled."""
        async with scoped(self.pool, subject=subject_id) as conn:
            row = await conn.fetchrow(
                "SELECT jurisdiction, jurisdiction_source, declared_jurisdiction, jurisdiction_at "
                "FROM subjects WHERE id = $1",
                subject_id,
            )
        if row is None:
            return None
        return RecordedJurisdiction(*row.values())

    async def record_jurisdiction(
        self, subject_id: UUID, key: str, source: str, declared: str | None
    ) -> None:
        async with scoped(self.pool, subject=subject_id) as conn:
            await conn.execute(
                "UPDATE subjects SET jurisdiction = $2, jurisdiction_source = $3, "
                "declared_jurisdiction = $4, jurisdiction_at = now() WHERE id = $1",
                subject_id,
                key,
                source,
                declared,
            )
