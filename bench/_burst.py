"""Scenario 8: a burst of 200 concurrent `me` queries to one process (issue 19, item 3).

Every request of the burst leaves at once on its own connection; the figure is how many were
refused (503), the target none (run alone with `--only 8`, its figures can be merged into a
full run's results: `--render` after adding them): requests past the execution slots wait their turn
(api/admission.py, DSAR_ADMISSION_WAIT 2 s by default) instead of being shed at once.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bench._context import Ctx, figure, target
from bench._queries import me_query
from bench._smallq import SMALL_SUBJECT, _body
from bench._stats import Target

BURST = 200


async def _burst(url: str, body: bytes, token: str) -> tuple[int, float]:
    """(refused, seconds until the last answer) of one burst."""
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        gate = asyncio.Event()

        async def one() -> int:
            await gate.wait()
            return (await client.post("/graphql", content=body, headers=headers)).status_code

        tasks = [asyncio.create_task(one()) for _ in range(BURST)]
        await asyncio.sleep(0)
        started = time.perf_counter()
        gate.set()
        statuses = await asyncio.gather(*tasks)
        took = time.perf_counter() - started
    others = {s for s in statuses if s not in (200, 503)}
    if others:
        raise RuntimeError(f"the burst got answers other than 200 and 503: {sorted(others)}")
    return sum(s == 503 for s in statuses), took


async def run(ctx: Ctx) -> None:
    token = ctx.bench.issuer.mint("customer", SMALL_SUBJECT, ttl=4 * 3600)
    body = _body(me_query(ctx.bench.catalogue))
    refused: list[float] = []
    seconds: list[float] = []
    for _ in range(ctx.config.rounds):
        n, took = await _burst(ctx.dsar.url, body, token)
        refused.append(float(n))
        seconds.append(took)
        await asyncio.sleep(1)
    ctx.results["8"] = {
        "title": f"A burst of {BURST} concurrent `me` queries to one process",
        "subject": f"{SMALL_SUBJECT}, {BURST} connections opened at once, default admission "
        "(16 slots, 2 s wait)",
        "targets": [
            target(f"burst of {BURST} concurrent: refused", Target("<=", 0, ""), refused),
        ],
        "figures": {"burst.seconds": figure(seconds, "s", "time until the burst's last answer")},
    }
