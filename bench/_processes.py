"""Scenario 9: throughput at one and at two processes (issue 19, item 7).

The same `me` query as scenario 4, under the same wrk load, to the benchmark's `dsar serve` (one
process) and to `dsar serve --workers 2` on the same database, interleaved round by round. The
figure is the ratio of their throughputs; on this machine both processes share its two cores
with PostgreSQL, so the ratio says how much of a second core one more process can use, not what
a larger machine would give. The CPU of the two-process server counts its children.
"""

from __future__ import annotations

import os

from bench._context import Ctx, dsar_server, figure
from bench._queries import me_query
from bench._smallq import SMALL_SUBJECT, Side, _body, _figures, _post, _rps, pair
from bench._stats import ratios

WORKERS = 2


async def run(ctx: Ctx) -> None:
    bench = ctx.bench
    token = bench.issuer.mint("customer", SMALL_SUBJECT, ttl=4 * 3600)
    body = _body(me_query(bench.catalogue))
    two = dsar_server(bench.env, workers=WORKERS).start()
    try:
        same = await _post(ctx.dsar.url, body, token) == await _post(two.url, body, token)
        if not same:
            raise RuntimeError(f"--workers {WORKERS} answers differently from one process")
        loads = await pair(
            ctx,
            {
                "one": Side(ctx.dsar.url, body, token, ctx.pid),
                "two": Side(two.url, body, token, two.pid, tree=True),
            },
        )
    finally:
        two.stop()
    ctx.results["9"] = {
        "title": f"Throughput at 1 and {WORKERS} processes: `me` with the first page of every "
        "category",
        "subject": f"{SMALL_SUBJECT}, {ctx.config.connections} connections, wrk; `dsar serve` "
        f"against `dsar serve --workers {WORKERS}` on the same database, on a machine of "
        f"{os.cpu_count()} cores that PostgreSQL shares",
        "same_answer": same,
        "targets": [],  # the issue asks for the figure, not a ratio to reach
        "figures": _figures(loads),
        "extra": [
            figure(
                ratios(_rps(loads["two"]), _rps(loads["one"])),
                "x",
                f"{WORKERS} processes / 1 process throughput",
            )
        ],
    }
