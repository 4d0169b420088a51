"""A bounded loopback load driver: N concurrent keep-alive clients for T seconds (and at most M
requests), every response judged by `_checks.judge` (leaks, traces, 5xx), latencies kept for
percentiles, the server's memory sampled while it runs.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from tests.reliability._checks import judge


@dataclass(frozen=True, slots=True)
class Call:
    """One kind of request: who asks (`kind`, `token`), what, and what the answer may hold."""

    kind: str
    token: str
    query: str
    own: str | None  # a marker the answer must hold when it is `ok`
    others: tuple[str, ...]  # markers it must never hold
    variables: dict[str, object] | None = None


@dataclass(slots=True)
class Report:
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    transport_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    @property
    def leaks(self) -> int:
        return sum(v.startswith("leak") for v in self.violations)

    @property
    def server_errors(self) -> int:
        """5xx other than a 503 with Retry-After (load shedding and unavailability are 503s)."""
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> str:
        rss = f", server RSS {min(self.rss) >> 20}-{max(self.rss) >> 20} MiB" if self.rss else ""
        rate = self.requests / self.seconds
        return (
            f"{self.requests} requests in {self.seconds:.1f} s ({rate:.0f}/s) {dict(self.by_kind)}"
            f"; outcomes {dict(self.outcomes)}; statuses "
            f"{dict(sorted(self.statuses.items()))}; {self.leaks} leaks, "
            f"{len(self.violations)} violations, {self.transport_errors} transport errors; "
            f"p50 {self.percentile(50) * 1000:.0f} ms, p95 {self.percentile(95) * 1000:.0f} ms, "
            f"p99 {self.percentile(99) * 1000:.0f} ms{rss}"
        )


async def drive(
    url: str,
    calls: Sequence[Call],
    *,
    concurrency: int,
    seconds: float,
    max_requests: int,
    rss: Callable[[], int] | None = None,
    seed: int = 1,
) -> Report:
    report = Report()
    rnd = random.Random(seed)  # a request mix, not security
    deadline = time.monotonic() + seconds
    budget = [max_requests]
    tls = ssl.create_default_context()

    async def worker() -> None:
        # A client of its own per worker: one shared pool of hundreds of connections costs the
        # driver more CPU than the server spends answering. One TLS context for all (unused on
        # plain http, but each client would build its own).
        async with httpx.AsyncClient(base_url=url, timeout=30, verify=tls) as client:
            await loop(client)

    async def loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            call = rnd.choice(calls)
            started = time.perf_counter()
            try:
                response = await client.post(
                    "/graphql",
                    json={"query": call.query, "variables": call.variables or {}},
                    headers={"Authorization": f"Bearer {call.token}"},
                )
            except httpx.TransportError:
                report.transport_errors += 1
                continue
            report.latencies.append(time.perf_counter() - started)
            verdict = judge(response, call.own, call.others)
            report.outcomes[verdict.outcome] += 1
            report.statuses[response.status_code] += 1
            report.by_kind[call.kind] += 1
            if verdict.violation is not None and len(report.violations) < 100:
                report.violations.append(verdict.violation)

    async def sample() -> None:
        while rss is not None:
            report.rss.append(rss())
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    report.seconds = time.monotonic() - began
    sampler.cancel()
    if rss is not None:
        report.rss.append(rss())
    return report
