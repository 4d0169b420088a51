"""CSV export from a MySQL / MariaDB store: time against a bare unbuffered read, and memory.

    python -m bench.mysql_export --rows 1000000 [--url mysql://root@127.0.0.1:3306]

Loads N page views of one person (and 100k of another) into a throw-away database mapped as
web_analytics, then reports the export's time against an asyncmy SSCursor read of the same
SELECT (and of the plain typed SELECT the service reads pages with), and the peak RSS of a
process that exports 100k rows against one that exports N. The figures go into
`bench/results.json` (`mysql_export`, kept by later runs of `python -m bench`) and the
"Mapped demo company" section of `bench/RESULTS.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncmy
from asyncmy.cursors import SSCursor

from catalogue import load_catalogue
from stores.config import parse_stores
from stores.mapping import Person
from stores.mysql import MySQLStore
from stores.mysql_pool import parse_dsn
from stores.mysql_streams import snapshot

SMALL = 100_000
SCHEMA = [
    "CREATE TABLE users (id BIGINT PRIMARY KEY)",
    "CREATE TABLE identifies (user_id BIGINT, anonymous_id VARCHAR(64), KEY (user_id))",
    """CREATE TABLE page_views (id BIGINT PRIMARY KEY, anonymous_id VARCHAR(64) NOT NULL,
    viewed_at DATETIME(6) NOT NULL, session_id VARCHAR(64), url VARCHAR(500),
    action VARCHAR(32), element VARCHAR(100), ref VARCHAR(500) NULL, dur INT,
    KEY (anonymous_id, viewed_at, id)) CHARACTER SET utf8mb4""",
]
# One person with `rows` views, another with SMALL; a third of the referrers are NULL.
FILL = """INSERT INTO page_views SELECT seq + {offset}, '{anon}',
    TIMESTAMP('2025-01-01') + INTERVAL seq SECOND + INTERVAL (seq % 7) * 1000 MICROSECOND,
    CONCAT('s-', seq DIV 50), CONCAT('https://example.com/p/', seq % 1000, '?q=', seq), 'click',
    CONCAT('button#', seq % 20), IF(seq % 3 = 0, NULL, 'https://ref.example.org/x'), seq % 5000
    FROM seq_1_to_{n}"""


def _stores(dsn: str) -> dict[str, Any]:
    return {
        "format": 2,
        "stores": {"db": {"kind": "mysql", "dsn": dsn}},
        "keys": {
            "user_id": {"anchor": True, "store": "db", "table": "users", "column": "id"},
            "anonymous_id": {
                "store": "db", "table": "identifies", "column": "anonymous_id",
                "match": {"user_id": "user_id"},
            },
        },
        "categories": {
            "web_analytics": {
                "store": "db", "table": "page_views", "match": {"anonymous_id": "anonymous_id"},
                "order": ["viewed_at", "id"],
                "fields": {
                    "id": "id", "occurred_at": "viewed_at", "session_id": "session_id",
                    "page_url": "url", "action": "action", "element": "element",
                    "referrer": "ref", "duration_ms": "dur",
                },
            }
        },
    }  # fmt: skip


async def _open(dsn: str) -> MySQLStore:
    catalogue = load_catalogue()
    catalogue = dataclasses.replace(catalogue, categories=(catalogue.category("web_analytics"),))
    config = parse_stores(_stores(dsn), "bench.toml", Path("."), {})
    return await MySQLStore.open("db", dsn, config, catalogue)


def _person(anon: str) -> Person:
    return Person("1", {"user_id": ("1",), "anonymous_id": (anon,)})


async def _execute(dsn: str, statements: list[str]) -> None:
    args = parse_dsn(dsn)
    args.pop("statement_timeout")
    conn = await asyncmy.connect(**args, autocommit=True)
    try:
        async with conn.cursor() as cur:
            for sql in statements:
                await cur.execute(sql)
    finally:
        conn.close()


async def _export(store: MySQLStore, anon: str) -> tuple[float, int]:
    start = time.perf_counter()
    size = 0
    async with snapshot(store) as snap:
        async for chunk in snap.csv("web_analytics", _person(anon)):
            size += len(chunk)
    return time.perf_counter() - start, size


async def _bare(store: MySQLStore, sql: str, args: tuple[Any, ...]) -> float:
    start = time.perf_counter()
    async with store.connection() as conn, conn.cursor(SSCursor) as cur:
        await cur.execute(sql, args)
        while await cur.fetchmany(2000):
            pass
    return time.perf_counter() - start


async def _timings(dsn: str, rows: int, rounds: int) -> dict[str, float]:
    store = await _open(dsn)
    try:
        cat = store.categories["web_analytics"]
        async with snapshot(store) as snap:
            stream = snap.csv("web_analytics", _person("big"))
            export_sql, export_args = stream._sql or "", stream._args
        args: list[Any] = []
        typed = f"SELECT {cat.select}{cat.body(_person('big'), args)}{cat.order_by}"
        best: dict[str, float] = {}
        cases: list[tuple[str, Callable[[], Awaitable[float]]]] = [
            ("bare_same_select", lambda: _bare(store, export_sql, export_args)),
            ("bare_typed_select", lambda: _bare(store, typed, tuple(args))),
            ("export_csv", lambda: _first(_export(store, "big"))),
        ]
        for _ in range(rounds):
            for name, run in cases:
                seconds = await run()
                best[name] = min(best.get(name, seconds), seconds)
        return best
    finally:
        await store.close()


async def _first(coro: Any) -> float:
    return float((await coro)[0])


def _child(dsn: str, anon: str) -> None:
    async def run() -> None:
        store = await _open(dsn)
        try:
            seconds, size = await _export(store, anon)
        finally:
            await store.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"seconds": seconds, "bytes": size, "peak_rss": peak}))

    asyncio.run(run())


def _peak(dsn: str, anon: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603  # this interpreter, this module
        [sys.executable, "-m", "bench.mysql_export", "--child", anon, "--url", dsn],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--url", default=os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        _child(opts.url, opts.child)
        return
    name = "dsar_bench_" + secrets.token_hex(4)
    server = urlsplit(opts.url)._replace(path="/").geturl()
    dsn = urlsplit(opts.url)._replace(path="/" + name).geturl()
    asyncio.run(_execute(server, [f"CREATE DATABASE {name}"]))
    try:
        started = time.perf_counter()
        asyncio.run(
            _execute(
                dsn,
                [
                    *SCHEMA,
                    "INSERT INTO users VALUES (1)",
                    "INSERT INTO identifies VALUES (1, 'big'), (1, 'small')",
                    FILL.format(offset=0, anon="big", n=opts.rows),
                    FILL.format(offset=opts.rows, anon="small", n=SMALL),
                    "ANALYZE TABLE page_views",
                ],
            )
        )
        print(f"loaded {opts.rows + SMALL} rows in {time.perf_counter() - started:.1f} s")
        best = asyncio.run(_timings(dsn, opts.rows, opts.rounds))
        small, big = _peak(dsn, "small"), _peak(dsn, "big")
    finally:
        asyncio.run(_execute(server, [f"DROP DATABASE IF EXISTS {name}"]))
    per_row = {k: v / opts.rows * 1e6 for k, v in best.items()}
    for key, seconds in best.items():
        print(f"{key:>18}: {seconds:6.2f} s  ({per_row[key]:.2f} µs/row)")
    export = best["export_csv"]
    print(f"ratio export / bare read of the same SELECT: {export / best['bare_same_select']:.2f}")
    print(f"ratio export / bare read of the typed SELECT: {export / best['bare_typed_select']:.2f}")
    print(f"CSV bytes for {opts.rows} rows: {big['bytes']}")
    mib = 1024 * 1024
    print(
        f"peak RSS: {small['peak_rss'] / mib:.1f} MiB at {SMALL} rows, "
        f"{big['peak_rss'] / mib:.1f} MiB at {opts.rows} rows"
    )
    record(
        {
            "command": "python -m bench.mysql_export" + "".join(f" {a}" for a in sys.argv[1:]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "server": asyncio.run(_version(server)),
            "rows": opts.rows,
            "small_rows": SMALL,
            "rounds": opts.rounds,
            "seconds": best,
            "ratio_same_select": export / best["bare_same_select"],
            "ratio_typed_select": export / best["bare_typed_select"],
            "csv_bytes": big["bytes"],
            "rss_small_mb": small["peak_rss"] / mib,
            "rss_large_mb": big["peak_rss"] / mib,
        }
    )


async def _version(dsn: str) -> str:
    args = parse_dsn(dsn)
    args.pop("statement_timeout")
    conn = await asyncmy.connect(**args)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT VERSION()")
            row = await cur.fetchone()
    finally:
        conn.close()
    return f"MySQL/MariaDB {row[0]}" if row else "MySQL/MariaDB"


def record(figures: dict[str, Any]) -> None:
    """Into results.json (beside the scenarios) and RESULTS.md, rendered again from it."""
    from bench._report import HERE, write

    path = HERE / "results.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    if "meta" not in saved:
        path.write_text(json.dumps({"mysql_export": figures}, indent=2) + "\n")
        return
    write(path, HERE / "RESULTS.md", saved["meta"], saved["scenarios"], figures)
    print("wrote the figures into bench/results.json and bench/RESULTS.md")


if __name__ == "__main__":
    main()
