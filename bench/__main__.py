"""dsar's benchmarks (issue 9): `make bench` (full) or `make bench-quick` (a few minutes).

    .venv/bin/python -m bench [--quick] [--rounds N] [--events N] [--only 1,4,7]

Seeds the benchmark's own data set if it is missing (under bench/.data/, an embedded
PostgreSQL of its own), starts `dsar serve` as `make serve` does (DSAR_DEV_ISSUER=1, its own
DSAR_HOME), runs the scenarios with interleaved rounds, profiles the server where a target is
missed, and writes bench/results.json and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import orjson

from bench import _audit, _burst, _exports, _fides, _processes, _smallq, _underload
from bench._context import Config, Ctx, dsar_server, export, profile_path
from bench._env import ROOT, open_bench, seed
from bench._load import Paced, Wrk, wrk_path
from bench._procs import cpu_seconds
from bench._profile import RATE, available, parts, record, summarise
from bench._queries import events_query, me_query
from bench._report import HERE, machine, saved_mysql, write

SCENARIOS = {
    1: "CSV export",
    2: "JSON export",
    3: "whole bundle",
    4: "small queries",
    5: "PostGraphile",
    6: "Fides",
    7: "under load",
    8: "burst",
    9: "processes",
    10: "audit appends",
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="100k-row exports, short loads")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (at least 5)")
    p.add_argument("--events", type=int, default=1_000_000, help="the heavy subject's events")
    p.add_argument("--load-seconds", type=float, help="seconds per load run (10; quick 3)")
    p.add_argument("--only", help="comma-separated scenario numbers (default: all)")
    p.add_argument("--database-url", help="another PostgreSQL for the benchmark's databases")
    p.add_argument("--reset", action="store_true", help="recreate the databases if stale")
    p.add_argument("--profile", action="store_true", help="profile every scenario, not only misses")
    p.add_argument(
        "--render", action="store_true", help="only rewrite RESULTS.md from results.json"
    )
    return p.parse_args(argv)


async def _profile(ctx: Ctx, key: str, what: str, work: Any) -> None:
    path = profile_path(f"scenario-{key}-{what.split()[0]}")
    pid = ctx.pid
    pg = ctx.pg_cpu()
    cpu = cpu_seconds(pid)
    with record(pid, path):
        start = time.perf_counter()
        await work()
        wall = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu
    pg_after = ctx.pg_cpu()
    lines = path.read_text().splitlines() if path.exists() else []
    samples, own, total = summarise(lines)
    ctx.results[key].setdefault("profiles", []).append(
        {
            "what": what,
            "samples": samples,
            "rate": RATE,
            "server_cpu_s": cpu,
            "pg_cpu_s": None if pg is None or pg_after is None else pg_after - pg,
            "wall_s": wall,
            "file": str(path.relative_to(ROOT)),
            "parts": parts(lines),
            "own": [{"frame": h.frame, "own": h.own, "total": h.total} for h in own],
            "total": [{"frame": h.frame, "own": h.own, "total": h.total} for h in total],
        }
    )
    print(f"  profiled scenario {key}: {what} ({samples} samples)", flush=True)


async def profiles(ctx: Ctx, every: bool) -> None:
    """Where a target was missed, what limits it: py-spy on the dsar server doing that work."""
    if available() is None:
        print("py-spy is not installed: no profiles (pip install py-spy)", flush=True)
        return
    cfg = ctx.config

    def missed(key: str) -> bool:
        r = ctx.results.get(key)
        return r is not None and (every or any(not t["met"] for t in r.get("targets", [])))

    # The heavy subject even in quick mode: a 100k-row export is over before py-spy sees much,
    # and the million-row export is the case issue 9 is about.
    subject = cfg.large
    for key, fmt in (("1", "csv"), ("2", "json"), ("3", "csv"), ("3", "json")):
        if missed(key):
            await _profile(
                ctx,
                key,
                f"{fmt} export of {subject.handle}",
                lambda fmt=fmt: export(ctx, subject, fmt),
            )
    url = ctx.dsar.url + "/graphql"
    me = orjson.dumps({"query": me_query(ctx.bench.catalogue)})
    me_token = ctx.bench.issuer.mint("customer", _smallq.SMALL_SUBJECT, ttl=3600)
    if missed("4"):
        await _profile(
            ctx,
            "4",
            "small queries under wrk load",
            lambda: Wrk(url, me, token=me_token).run(cfg.load_seconds),
        )
    if missed("5"):
        events = orjson.dumps({"query": events_query(ctx.bench.catalogue)})
        token = ctx.bench.issuer.mint("customer", cfg.large.handle, ttl=3600)
        await _profile(
            ctx,
            "5",
            "events queries under wrk load",
            lambda: Wrk(url, events, token=token).run(cfg.load_seconds),
        )
    if missed("7"):

        async def exports_under_load() -> None:
            w = Paced(url, me, token=me_token, rate=ctx.results["7"]["rate"])
            await w.start()
            await asyncio.gather(*(export(ctx, s, "csv") for s in cfg.load_subjects))
            await w.stop()

        await _profile(ctx, "7", "4 exports under small-query load", exports_under_load)
    if missed("6"):
        await _profile(
            ctx, "6", f"json export of {cfg.large.handle}", lambda: export(ctx, cfg.large, "json")
        )


async def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.render:
        saved = json.loads((HERE / "results.json").read_text())
        write(
            HERE / "results.json",
            HERE / "RESULTS.md",
            saved["meta"],
            saved["scenarios"],
            saved.get("mysql_export"),
        )
        return 0
    if args.rounds < 5:
        print("at least 5 rounds: the medians must mean something", file=sys.stderr)
        return 2
    only = frozenset(int(x) for x in args.only.split(",")) if args.only else frozenset(SCENARIOS)
    cfg = Config(
        quick=args.quick,
        rounds=args.rounds,
        events=args.events,
        load_seconds=args.load_seconds or (3.0 if args.quick else 10.0),
        only=only,
    )
    if only & {4, 5, 7}:
        wrk_path()  # fails early, with the command that installs it
    started = time.perf_counter()
    load_before = os.getloadavg()
    bench = await open_bench(args.database_url, reset=args.reset)
    try:
        print(f"seeding {len(cfg.subjects())} subjects if missing…", flush=True)
        took = await seed(bench, cfg.subjects())
        print(f"  seeded in {took:.1f} s" if took else "  already there", flush=True)
        postgres = str(await bench.stores.subjects.pool.fetchval("SHOW server_version"))
        server = dsar_server(bench.env).start()
        ctx = Ctx(cfg, bench, server)
        try:
            steps: list[tuple[set[int], Any]] = [
                ({1, 2, 3}, _exports.run),
                ({4}, _smallq.small_queries),
                ({5}, _smallq.graphql_peer),
                ({6}, _fides.run),
                ({7}, _underload.run),
                ({8}, _burst.run),
                ({9}, _processes.run),
                ({10}, _audit.run),
            ]
            for numbers, step in steps:
                if numbers & only:
                    names = ", ".join(f"{n}. {SCENARIOS[n]}" for n in sorted(numbers))
                    print(f"scenario {names}", flush=True)
                    await step(ctx)
            await profiles(ctx, args.profile)
        finally:
            server.stop()
        fides = _fides.describe()
        meta = machine(postgres, fides)
        command = "python -m bench" + ("".join(" " + a for a in argv) if argv else "")
        meta["config"] = {
            "command": command,
            "quick": cfg.quick,
            "rounds": cfg.rounds,
            "events": cfg.events,
            "load_seconds": cfg.load_seconds,
            "connections": cfg.connections,
            "scenarios": sorted(only),
            "seconds": round(time.perf_counter() - started, 1),
            # Other work on the machine shows up directly in the figures.
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
        mysql = saved_mysql(HERE / "results.json")  # `bench.mysql_export`'s, kept
        write(HERE / "results.json", HERE / "RESULTS.md", meta, ctx.results, mysql)
        print(f"wrote bench/results.json and bench/RESULTS.md in {meta['config']['seconds']} s")
    finally:
        await bench.close()
    return 0


def cli() -> None:
    sys.exit(asyncio.run(main(sys.argv[1:] or None)))


if __name__ == "__main__":
    cli()
