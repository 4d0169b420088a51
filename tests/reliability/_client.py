"""The queries the reliability tests send, and small helpers around a running server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import httpx

from tests.reliability._checks import Verdict, judge
from tests.reliability.conftest import Marked, Population

# One field from each store: accounts, billing, analytics, media; text fields carry the marker.
ME = """
{ me { id
  profile { firstName email city }
  payment { accountHolder bankName }
  webAnalytics(first: 5) { edges { node { pageUrl action } } }
  device(first: 3) { edges { node { userAgent cookieId } } }
  provided(first: 3) { edges { node { title body } } }
  recordings { fileName bytes }
} }
"""
# Only the accounts store.
PROFILE = "{ me { profile { firstName email } } }"


async def ask(client: httpx.AsyncClient, subject: Marked, query: str = ME) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {subject.token}"},
        timeout=30,
    )


async def ask_and_judge(
    client: httpx.AsyncClient, population: Population, subject: Marked, query: str = ME
) -> tuple[Verdict, float]:
    started = time.monotonic()
    try:
        response = await ask(client, subject, query)
    except httpx.TimeoutException:
        return Verdict("bad", "the client gave up waiting"), time.monotonic() - started
    return judge(response, subject.marker, population.others(subject)), time.monotonic() - started


async def all_ok(client: httpx.AsyncClient, population: Population) -> bool:
    results = await asyncio.gather(
        *(ask_and_judge(client, population, s) for s in population.subjects)
    )
    for verdict, _ in results:
        assert verdict.violation is None, verdict.violation
    return all(v.outcome == "ok" for v, _ in results)


async def recovery_time(
    client: httpx.AsyncClient, population: Population, limit: float = 30.0
) -> float:
    """Seconds until every subject gets all of their data again (every answer checked)."""
    started = time.monotonic()
    while not await all_ok(client, population):
        assert time.monotonic() - started < limit, f"not recovered after {limit} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def wait_until(
    check: Callable[[], Awaitable[bool]], within: float = 10.0, what: str = "condition"
) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"{what}: not within {within} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def backends(admin: asyncpg.Connection, application_name: str, waiting: bool = False) -> int:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
    if waiting:
        sql += " AND wait_event_type = 'Lock'"
    return int(await admin.fetchval(sql, application_name))
