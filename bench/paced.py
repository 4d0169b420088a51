"""An open-loop load at a fixed rate, for scenario 7's small queries.

wrk keeps its connections busy, so the server is always saturated and its p99 is mostly
queueing. Here request i is due at start + i / rate whatever happened before, and its latency is
counted from that moment (no coordinated omission): a server that stalls shows it in full.
Failed requests (not 200, or a body with errors first) are counted apart, not in the latencies.
Runs in its own process, so the benchmark's own work (COPYs, downloads) cannot delay it.

    BENCH_TOKEN=... python -m bench.paced --url http://127.0.0.1:8000/graphql \\
        --body body.json --rate 30 --seconds 600      # stops early on SIGINT, then reports
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

MAX_IN_FLIGHT = 256


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of `values`."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


async def run(url: str, body: bytes, token: str, rate: float, seconds: float) -> dict[str, float]:
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("load is only ever sent to this machine")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=64)

    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(due: float) -> None:
            nonlocal errors
            async with slots:
                try:
                    r = await client.post(url, content=body, headers=headers)
                    # A 200 whose body starts with errors is a failure too (a timed-out resolver).
                    ok = r.status_code == 200 and not r.content.startswith(b'{"errors"')
                except httpx.HTTPError:
                    ok = False
            if ok:
                latencies.append(time.perf_counter() - due)
            else:
                errors += 1

        start = time.perf_counter()
        tasks = []
        i = 0
        while not stop.is_set() and time.perf_counter() - start < seconds:
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                try:
                    await asyncio.wait_for(stop.wait(), wait)
                    break
                except TimeoutError:
                    pass
            tasks.append(asyncio.create_task(one(due)))
            i += 1
        elapsed = time.perf_counter() - start
        await asyncio.gather(*tasks)
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms) + errors,
        "seconds": elapsed,
        "rate": (len(ms) + errors) / elapsed if elapsed else 0.0,
        "errors": errors,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms, default=0.0),
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.paced", description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--body", required=True, type=Path)
    p.add_argument("--rate", required=True, type=float)
    p.add_argument("--seconds", type=float, default=600)
    args = p.parse_args()
    result = asyncio.run(
        run(args.url, args.body.read_bytes(), os.environ["BENCH_TOKEN"], args.rate, args.seconds)
    )
    print("PACEDJSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
