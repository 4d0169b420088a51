"""Admission by waiting time (api/admission.py) and at the edge (api/middleware.py): a burst past
the slots waits and is served; only a request that could not start in time, or finds the queue
full, is refused, and at the edge that is 503 + Retry-After with a listed code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from api.admission import Admission, Refused
from api.metrics import Metrics
from api.middleware import EdgeMiddleware
from api.settings import Settings, SettingsError
from schema.error_codes import CODES


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _until(condition: Callable[[], bool]) -> None:
    """Turns of the event loop until `condition` holds (a request through the ASGI transport
    takes several before its body has arrived and it asks for a slot)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def test_a_burst_past_the_slots_waits_and_is_served_in_order() -> None:
    admission = Admission(slots=2, queue=100, wait=60)
    started: list[int] = []
    go = asyncio.Event()

    async def request(n: int) -> None:
        await admission.acquire()
        started.append(n)
        try:
            await go.wait()
        finally:
            admission.release()

    tasks = [asyncio.create_task(request(n)) for n in range(20)]
    await _settle()
    assert (admission.busy, admission.waiting, started) == (2, 18, [0, 1])
    go.set()
    await asyncio.gather(*tasks)
    assert started == list(range(20))
    assert (admission.busy, admission.waiting) == (0, 0)


async def test_a_request_that_cannot_start_in_time_is_refused_and_leaves_the_queue() -> None:
    admission = Admission(slots=1, queue=100, wait=0.01)
    await admission.acquire()
    with pytest.raises(Refused):
        await admission.acquire()
    assert (admission.busy, admission.waiting) == (1, 0)
    admission.release()
    await admission.acquire()  # free again
    assert admission.busy == 1


async def test_a_full_queue_refuses_at_once() -> None:
    admission = Admission(slots=1, queue=1, wait=60)
    await admission.acquire()
    waiter = asyncio.create_task(admission.acquire())
    await _settle()
    with pytest.raises(Refused):
        await admission.acquire()
    admission.release()
    await waiter
    assert (admission.busy, admission.waiting) == (1, 0)


async def test_a_waiter_cancelled_keeps_no_slot_and_no_place() -> None:
    admission = Admission(slots=1, queue=10, wait=60)
    await admission.acquire()
    waiter = asyncio.create_task(admission.acquire())
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (admission.busy, admission.waiting) == (1, 0)
    admission.release()
    assert admission.busy == 0


async def test_a_waiter_held_below_its_limit_lets_the_next_one_start() -> None:
    admission = Admission(slots=2, queue=10, wait=60)
    await admission.acquire()
    await admission.acquire()
    low = asyncio.create_task(admission.acquire(limit=1))
    full = asyncio.create_task(admission.acquire())
    await _settle()
    admission.release()  # one busy: `low` may not start (its limit is 1), `full` may
    await full
    assert not low.done() and admission.busy == 2
    admission.release()
    admission.release()
    await low
    assert (admission.busy, admission.waiting) == (1, 0)


def _edge(admission: Admission, go: asyncio.Event) -> EdgeMiddleware:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):  # a slot is asked for once the body is in
            pass
        if scope["path"] != "/healthz":
            await go.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return EdgeMiddleware(app, metrics=Metrics(), max_body=1024, admission=admission)


async def test_at_the_edge_a_burst_is_answered_not_refused() -> None:
    admission = Admission(slots=4, queue=1000, wait=60)
    go = asyncio.Event()
    transport = httpx.ASGITransport(app=_edge(admission, go))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        burst = [asyncio.create_task(c.post("/graphql", json={})) for _ in range(200)]
        await _until(lambda: admission.waiting > 0)
        go.set()
        answers = await asyncio.gather(*burst)
    assert [r.status_code for r in answers] == [200] * 200


async def test_at_the_edge_one_that_could_not_start_in_time_gets_503_and_retry_after() -> None:
    admission = Admission(slots=1, queue=1000, wait=0.01)
    go = asyncio.Event()
    transport = httpx.ASGITransport(app=_edge(admission, go))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        holder = asyncio.create_task(c.post("/graphql", json={}))
        await _until(lambda: admission.busy == 1)
        refused = await c.post("/graphql", json={})
        probe = await c.get("/healthz")  # probes never wait for a slot
        go.set()
        assert (await holder).status_code == 200
    assert refused.status_code == 503 and refused.headers["retry-after"].isdigit()
    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "OVERLOADED" and "OVERLOADED" in CODES
    assert probe.status_code == 200
    assert (admission.busy, admission.waiting) == (0, 0)


def test_the_admission_settings_are_read_and_checked(tmp_path: Any) -> None:
    base = {"DSAR_HOME": str(tmp_path), "DSAR_SECRET_KEY": "k" * 40}
    s = Settings.from_env(
        {
            **base,
            "DSAR_ADMISSION_SLOTS": "8",
            "DSAR_ADMISSION_QUEUE": "50",
            "DSAR_ADMISSION_WAIT": "0.5",
        }
    )
    assert (s.admission_slots, s.admission_queue, s.admission_wait) == (8, 50, 0.5)
    with pytest.raises(SettingsError, match="DSAR_ADMISSION_WAIT"):
        Settings.from_env({**base, "DSAR_ADMISSION_WAIT": "soon"})
    with pytest.raises(SettingsError, match="DSAR_ADMISSION_WAIT"):
        Settings.from_env({**base, "DSAR_ADMISSION_WAIT": "0"})


async def test_a_slot_freed_as_a_waiters_deadline_passes_goes_to_the_next_one() -> None:
    """The waiter's deadline has cancelled its wait but it has not run yet when a slot comes
    free: the slot is neither lost nor given to it."""
    admission = Admission(slots=1, queue=10, wait=60)
    await admission.acquire()
    late = asyncio.create_task(admission.acquire())
    next_one = asyncio.create_task(admission.acquire())
    await _settle()
    late.cancel()  # what the deadline does; `late` has not run since
    admission.release()
    await next_one
    with pytest.raises(asyncio.CancelledError):
        await late
    assert (admission.busy, admission.waiting) == (1, 0)
    admission.release()
    assert admission.busy == 0
