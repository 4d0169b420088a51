"""A burst against a real server: 200 concurrent `me` queries to one process, all answered.

Requests past the execution slots wait their turn (api/admission.py) instead of being shed at
once; the server runs with its default slots and queue. The wait is raised here only so a
loaded test machine cannot turn this into a measurement of its speed: bench/ measures the
burst with the defaults (`burst of 200 concurrent: refused`).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.reliability._checks import judge
from tests.reliability._client import ME
from tests.reliability.conftest import Population, ServerFactory

BURST = 200


async def test_a_burst_of_200_me_queries_is_all_answered(
    start_server: ServerFactory, population: Population
) -> None:
    server = await start_server(env={"DSAR_ADMISSION_WAIT": "60"})
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as client:
        subjects = [population.subjects[n % len(population.subjects)] for n in range(BURST)]
        gate = asyncio.Event()

        async def one(n: int) -> httpx.Response:
            await gate.wait()  # every request leaves together
            return await client.post(
                "/graphql",
                json={"query": ME},
                headers={"Authorization": f"Bearer {subjects[n].token}"},
            )

        tasks = [asyncio.create_task(one(n)) for n in range(BURST)]
        await asyncio.sleep(0)
        gate.set()
        answers = await asyncio.gather(*tasks)
    verdicts = [
        judge(r, s.marker, population.others(s)) for r, s in zip(answers, subjects, strict=True)
    ]
    outcomes = Counter(v.outcome for v in verdicts)
    print(f"\n{BURST} concurrent me queries: {dict(outcomes)}")
    assert [v.violation for v in verdicts if v.violation] == []
    assert outcomes == {"ok": BURST}, outcomes
