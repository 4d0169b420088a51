"""How close a streamed export bundle comes to bare COPY, and how much memory it takes.

    .venv/bin/python -m bench.export_bench --events 1000000 --rounds 5

Seeds the demo company's heavy person with N web-analytics events (`page_events` rows of one
cookie id; once, reseeded if N changes), then runs interleaved rounds of: bare `copy_from_query`
of the same mapped SELECT the export runs, wrapped by `csv_query`, into a sink that drops the
bytes (the CSV baseline), the same SELECT as plain CSV (what the CSV cells cost), the CSV bundle
into the same sink, bare COPY of the SELECT wrapped by `json_query` (the JSON baseline), the JSON
bundle. Prints median/min/max seconds, the bundle/baseline ratios (target <= 1.3x), the
process's peak RSS, and the RSS while streaming a 100k-event person against the 1M one. Uses
DSAR_DATABASE_URL, or the embedded PostgreSQL under DSAR_HOME, as `dsar` does.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

from api.settings import DEV_ISSUER, Settings
from bench._copy import Query, query
from bench._env import person, set_events, vacuum
from catalogue import Catalogue, load_catalogue
from exporters.bundle import build_bundle
from stores.deployment import migrate
from stores.registry import Stores
from stores.seed import HEAVY, seed, subject_id
from stores.streams import SNAPSHOT_SETTINGS

SMALL = "bench-100k"
SMALL_EVENTS = 100_000
_PAGE = resource.getpagesize()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Sink:
    """Drops the bytes, counts them, and notes the highest RSS seen while they arrived."""

    def __init__(self) -> None:
        self.bytes = 0
        self.rss = 0.0
        self._calls = 0

    async def __call__(self, data: bytes) -> None:
        self.bytes += len(data)
        self._calls += 1
        if self._calls % 16 == 0:
            self.rss = max(self.rss, rss_mb())

    async def drain(self, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            await self(chunk)


async def bare_copy(stores: Stores, q: Query, sink: Sink) -> None:
    async with stores.postgres(q.category).pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # The same session settings the bundle's snapshot uses (UTC, no 30 s timeout).
            await conn.execute(f"SET LOCAL statement_timeout = 0; {SNAPSHOT_SETTINGS}")
            await conn.copy_from_query(q.sql, *q.args, output=sink, timeout=600, **q.options)


async def bundle(stores: Stores, catalogue: Catalogue, sid: UUID, fmt: str, sink: Sink) -> None:
    chunks = build_bundle(
        stores,
        catalogue,
        sid,
        format=fmt,
        purpose="access",
        export_id=uuid4(),
        generated_at=datetime.now(UTC),
    )
    await sink.drain(chunks)


async def timed(run: Callable[[Sink], Awaitable[None]]) -> tuple[float, Sink]:
    sink = Sink()
    start = time.perf_counter()
    await run(sink)
    return time.perf_counter() - start, sink


async def prepare(stores: Stores, catalogue: Catalogue, events: int) -> None:
    start = time.perf_counter()
    await seed(stores, catalogue, issuer=DEV_ISSUER, heavy_events=events)
    await set_events(stores, catalogue, SMALL, SMALL_EVENTS)
    await vacuum(stores)
    print(f"seeded in {time.perf_counter() - start:.1f} s")


async def main(events: int, rounds: int) -> None:
    deployment = Settings.from_env().locate()
    await migrate(deployment)
    catalogue = load_catalogue()
    stores = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
    try:
        await prepare(stores, catalogue, events)
        sid = subject_id(HEAVY)
        who = await person(stores, sid)
        q = {kind: query(stores, "web_analytics", who, kind) for kind in ("csv", "json", "plain")}
        cases: dict[str, Callable[[Sink], Awaitable[None]]] = {
            "csv baseline (COPY)": lambda s: bare_copy(stores, q["csv"], s),
            "csv COPY, plain SELECT": lambda s: bare_copy(stores, q["plain"], s),
            "csv bundle": lambda s: bundle(stores, catalogue, sid, "csv", s),
            "json baseline (COPY)": lambda s: bare_copy(stores, q["json"], s),
            "json bundle": lambda s: bundle(stores, catalogue, sid, "json", s),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        sizes: dict[str, int] = {}
        for n in range(rounds):
            for name, run in cases.items():
                seconds, sink = await timed(run)
                times[name].append(seconds)
                sizes[name] = sink.bytes
            print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
        print(f"\n{events:,} events, {rounds} rounds (seconds)")
        print(f"{'case':<34}{'median':>8}{'min':>8}{'max':>8}{'MB out':>9}{'rows/s':>10}")
        for name, ts in times.items():
            mid = statistics.median(ts)
            print(
                f"{name:<34}{mid:8.2f}{min(ts):8.2f}{max(ts):8.2f}"
                f"{sizes[name] / 2**20:9.1f}{events / mid:10,.0f}"
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        for fmt, base in (
            ("csv", "csv baseline (COPY)"),
            ("json", "json baseline (COPY)"),
        ):
            ratio = med[f"{fmt} bundle"] / med[base]
            print(f"{fmt} bundle / baseline: {ratio:.2f}x (target <= 1.3x)")
        plain = med["csv COPY, plain SELECT"]
        print(f"csv bundle / COPY of the plain mapped SELECT: {med['csv bundle'] / plain:.2f}x")
        # Memory: the highest RSS seen while streaming each subject's CSV and JSON bundles.
        for label, handle in ((f"{SMALL_EVENTS:,} events", SMALL), (f"{events:,} events", HEAVY)):
            found = await stores.subject_by_handle(handle)
            assert found is not None
            for fmt in ("csv", "json"):
                sink = Sink()
                await bundle(stores, catalogue, found, fmt, sink)
                print(f"RSS while streaming the {fmt} bundle of {label}: {sink.rss:.0f} MB")
        print(f"peak RSS of the process: {peak_rss_mb():.0f} MB")
    finally:
        await stores.close()
        deployment.stop()


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.export_bench", description=__doc__)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    asyncio.run(main(args.events, args.rounds))


if __name__ == "__main__":
    cli()
