"""The benchmark's own deployment: databases, seeded subjects and the environment of its servers.

Everything lives under `bench/.data/` (git-ignored): an embedded PostgreSQL of its own under
`bench/.data/home/pg` (or `--database-url`), so the million-row subjects never meet a
development database or the test suite's databases. Its servers get `DSAR_HOME=bench/.data/home`
and `DSAR_DATABASE_URL` pointing at that server, and are otherwise started as `make serve` does.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg

from api.devissuer import DevIssuer
from api.settings import DEV_ISSUER, Settings
from catalogue import Catalogue, load_catalogue
from stores.config import with_database
from stores.deployment import Deployment, database_name, migrate
from stores.embedded import start_embedded
from stores.migrate import MigrationError
from stores.registry import Stores
from stores.seed import HEAVY, build_subject, copy_rows, insert_subject, subject_id, web_events

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
HOME = DATA / "home"
LOGS = DATA / "logs"
VENV_BIN = ROOT / ".venv" / "bin"
# Raised for the benchmark only: every round asks for new exports (README: DSAR_EXPORTS_PER_DAY).
EXPORTS_PER_DAY = 1_000_000


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
        server, embedded = start_embedded(HOME / "pg")
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


async def _events(bench: Bench, sid: UUID) -> int:
    pool = bench.stores.postgres("web_analytics").pool
    return int(await pool.fetchval("SELECT count(*) FROM web_analytics WHERE subject_id = $1", sid))


async def seed(bench: Bench, subjects: list[Subject]) -> float:
    """Seeds what is missing; returns the seconds it took (0 when everything was there).

    The heavy subject goes through `dsar seed --heavy-events N`; the benchmark's other subjects
    through the same seed helpers, each with a login at the dev issuer named by its handle.
    """
    start = time.perf_counter()
    changed = False
    for s in subjects:
        if s.handle == HEAVY:
            if await _events(bench, s.id) != s.events:
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
        if await bench.stores.subject_by_handle(s.handle) is None:
            data = build_subject(s.handle, full=True, sensitive=False, events=0)
            data.logins.append((DEV_ISSUER, s.handle))
            await insert_subject(bench.stores, bench.catalogue, data)
            changed = True
        if await _events(bench, s.id) != s.events:
            pool = bench.stores.postgres("web_analytics").pool
            await pool.execute("DELETE FROM web_analytics WHERE subject_id = $1", s.id)
            seed_no = int.from_bytes(s.id.bytes[:4], "big")
            events = web_events(seed_no, s.events)
            await copy_rows(bench.stores, bench.catalogue, "web_analytics", s.id, events)
            changed = True
    if changed:
        # Hint bits and the visibility map set once here, not by the first timed round.
        async with bench.stores.postgres("web_analytics").pool.acquire() as conn:
            await conn.execute("VACUUM (ANALYZE) web_analytics", timeout=1800)
        return time.perf_counter() - start
    return 0.0
