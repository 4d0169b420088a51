"""Scenario 10: audit appends per second from 64 concurrent writers (issue 19, item 6).

dsar's path is the service's own: `domain.audit.record` through a `GroupCommit` on a pool of two
connections, as `create_app` builds it, each writer appending a support look's row (an agent,
a ticket, a reason, two categories) one after another. The baseline, in the same round, is the
path every stand-alone append took before: `record` on the main pool (10 connections), one
transaction and one `audit_append()` call per row, all queued on the chain's lock. Both write
into a throw-away service database of their own on the benchmark's server (migrated, dropped at
the end), so the benchmark's data set keeps no rows. After every round `verify()` recomputes
the whole chain: a round that leaves it broken is an error, not a figure.
"""

from __future__ import annotations

import asyncio
import time
from statistics import median
from uuid import uuid4

import asyncpg

from bench._context import Ctx, figure, target
from bench._stats import Target
from domain.audit import Action, Db, GroupCommit, record, verify
from domain.principals import SupportAgent
from stores.config import with_database
from stores.deployment import database_name
from stores.migrate import apply, ensure_database, migrations_for
from stores.pool import create_pool

WRITERS = 64
ROWS = 100  # per writer and round, through the group commit
BASELINE_ROWS = 25  # per writer and round, one transaction each: about 1,000 a second
AGENT = SupportAgent("https://bench.invalid", "agent-bench", frozenset({"support:read"}))
PURPOSE = {"ticket": "BENCH-10", "reason": "The person asked what we hold about them."}


async def _append(db: Db | GroupCommit, writers: int, rows: int) -> float:
    """Appends per second: `writers` concurrent writers, `rows` appends each."""

    async def writer(w: int) -> None:
        for i in range(rows):
            await record(
                db,
                request_id=f"bench-{w}-{i}",
                actor=AGENT,
                subject_id=uuid4(),
                action=Action.SUBJECT_READ,
                outcome="allowed",
                purpose=PURPOSE,
                categories=("profile", "payment"),
            )

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return writers * rows / (time.perf_counter() - started)


async def _verified(db: asyncpg.Pool) -> float:
    """Seconds to verify the whole chain; raises when it is broken."""
    started = time.perf_counter()
    result = await verify(db)
    if not result.ok:
        raise RuntimeError(f"scenario 10: {result}")
    return time.perf_counter() - started


async def _drop(dsn: str) -> None:
    admin = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database_name(dsn)}" WITH (FORCE)')
    finally:
        await admin.close()


async def run(ctx: Ctx) -> None:
    dsn = with_database(ctx.bench.service_dsn, "dsar_bench_audit")
    await _drop(dsn)  # a chain of its own, from the first row
    await ensure_database(with_database(dsn, "postgres"), database_name(dsn))
    await apply(dsn, migrations_for("service"))
    main = await create_pool(dsn)  # the app's main pool: the old path's connections
    grouped = await create_pool(dsn, min_size=1, max_size=2)  # the app's group commit's
    log = GroupCommit(grouped)
    rates: list[float] = []
    baseline: list[float] = []
    per_batch: list[float] = []
    checks: list[float] = []
    try:
        await _append(log, WRITERS, 5)  # warm-up, not recorded
        await _append(main, WRITERS, 2)
        for n in range(ctx.config.rounds):
            for side in ("group", "baseline") if n % 2 == 0 else ("baseline", "group"):
                if side == "group":
                    batches, rows = log.batches, log.rows
                    rates.append(await _append(log, WRITERS, ROWS))
                    per_batch.append((log.rows - rows) / (log.batches - batches))
                else:
                    baseline.append(await _append(main, WRITERS, BASELINE_ROWS))
                checks.append(await _verified(main))
        written = int(await main.fetchval("SELECT count(*) FROM audit_log"))
    finally:
        await log.close()
        await grouped.close()
        await main.close()
        await _drop(dsn)
    ctx.results["10"] = {
        "title": f"Audit appends per second from {WRITERS} concurrent writers",
        "subject": f"{WRITERS} writers, {ROWS} support-look rows each a round, through "
        "the group commit (`GroupCommit`, 2 connections); baseline: the same writers, "
        f"{BASELINE_ROWS} rows each, one transaction per row (10 connections); {written} rows "
        "in the end, the chain verified after every round",
        "targets": [
            target(
                "audit appends per second",
                Target(">=", 5000, "rps"),
                rates,
                note=f"baseline, one transaction per append: median {median(baseline):,.0f}/s",
            ),
        ],
        "figures": {
            "audit.baseline": figure(
                baseline, "rps", "appends per second, one transaction per append (before)"
            ),
            "audit.rows_per_batch": figure(per_batch, "", "rows per group commit, on average"),
            "audit.verify": figure(checks, "s", "verify() of the whole chain after a round"),
        },
    }
