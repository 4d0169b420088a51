"""The export budget (domain/budget.py): export streams give way to small requests at their pace
points and at most `active` of them work at once; its settings are validated. The budget with
real exports and a real server: tests/reliability/test_export_budget.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from api.settings import Settings, SettingsError
from domain.budget import ACTIVE, SHARE, ExportBudget


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def _turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_without_small_requests_a_stream_never_gives_way() -> None:
    budget = ExportBudget(active=1, share=0.25)
    pacer = budget.stream()
    for _ in range(100):
        await pacer.pace()
    pacer.close()
    assert budget.gave_way == 0


async def test_a_stream_waits_for_small_requests_in_flight_and_goes_on_when_they_end() -> None:
    budget = ExportBudget(active=2, share=0.01)
    pacer = budget.stream()
    await pacer.pace()
    # Its last slice "took" 100 s: it may wait up to 99 times that for the small requests.
    pacer.resumed -= 100
    with budget.small_request():
        waiting = asyncio.create_task(pacer.pace())
        await _turns()
        assert not waiting.done() and budget.gave_way == 1
    await _until(waiting.done)  # the small request ended: the stream goes on at once
    await waiting
    pacer.close()


async def test_a_stream_given_its_share_goes_on_though_small_requests_never_end() -> None:
    budget = ExportBudget(active=1, share=0.5)
    pacer = budget.stream()
    await pacer.pace()
    with budget.small_request():
        for _ in range(5):
            await pacer.pace()  # each wait is as long as the slice before it: never for ever
    assert budget.gave_way == 5
    pacer.close()


async def test_share_one_never_gives_way() -> None:
    budget = ExportBudget(active=1, share=1)
    pacer = budget.stream()
    with budget.small_request():
        for _ in range(5):
            await pacer.pace()
    pacer.close()
    assert budget.gave_way == 0


async def test_at_most_active_streams_work_at_once_and_take_turns_in_order() -> None:
    budget = ExportBudget(active=1, share=0.25)
    first, second, third = budget.stream(), budget.stream(), budget.stream()
    await first.pace()
    later = [asyncio.create_task(p.pace()) for p in (second, third)]
    await _turns()
    assert not any(t.done() for t in later)
    # The first gives its place up at its next pace point and queues behind the others.
    again = asyncio.create_task(first.pace())
    await _until(later[0].done)
    assert not later[1].done() and not again.done()
    second.close()  # a stream that ends gives its place up too
    await _until(later[1].done)
    assert not again.done()
    third.close()
    await _until(again.done)
    first.close()
    assert not any(p.holding for p in (first, second, third))


async def test_streams_waiting_on_their_clients_hold_no_other_export_up() -> None:
    """A download rests while its chunk waits on the client's network (domain/downloads.py):
    `active` downloads whose clients stop reading leave the permits free, so another export,
    already streaming or new, passes its pace point at once."""
    budget = ExportBudget()  # the defaults: ACTIVE permits
    stalled = [budget.stream() for _ in range(ACTIVE)]
    for pacer in stalled:
        await pacer.pace()  # working: it holds a permit
        pacer.rest()  # its chunk is handed to a client that never reads again
    other = budget.stream()
    await asyncio.wait_for(other.pace(), 1.0)
    assert other.holding
    for pacer in [*stalled, other]:
        pacer.close()


async def test_a_slow_clients_wait_is_not_counted_as_the_streams_work() -> None:
    """The pause a slice makes the exports serve while small requests run is its own work
    (`share` of the time), not the time its chunk waited for a client that reads slowly."""
    budget = ExportBudget(active=2, share=0.1)
    slow = budget.stream()
    await slow.pace()
    slow.rest()
    slow.resumed = 0.0
    slow.worked = 0.001  # a millisecond of its own work, then a long wait on its client
    await asyncio.sleep(0.3)
    with budget.small_request():
        # It owes about 9 ms of pause for its 1 ms of work, not 2.7 s for the 0.3 s wait.
        await asyncio.wait_for(slow.pace(), 1.0)
        assert budget.gave_way == 1
    slow.close()


def test_the_settings_have_defaults_and_refuse_what_cannot_be_used(tmp_path: Path) -> None:
    base = {"DSAR_HOME": str(tmp_path), "DSAR_SECRET_KEY": "k" * 40}
    settings = Settings.from_env(base)
    assert (settings.export_active, settings.export_share) == (ACTIVE, SHARE)
    ok = Settings.from_env({**base, "DSAR_EXPORT_ACTIVE": "3", "DSAR_EXPORT_SHARE": "0.5"})
    assert (ok.export_active, ok.export_share) == (3, 0.5)
    for name, value in [
        ("DSAR_EXPORT_ACTIVE", "0"),
        ("DSAR_EXPORT_ACTIVE", "two"),
        ("DSAR_EXPORT_SHARE", "0"),
        ("DSAR_EXPORT_SHARE", "1.5"),
        ("DSAR_EXPORT_SHARE", "-0.1"),
        ("DSAR_EXPORT_SHARE", "nan"),
        ("DSAR_EXPORT_SHARE", "a quarter"),
    ]:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({**base, name: value})
    with pytest.raises(ValueError):
        ExportBudget(active=0)


async def test_work_beside_a_stream_gives_way_but_takes_no_place() -> None:
    """The web pages a bundle renders beside its data file (exporters/bundle.py) pace with
    `beside`: with every place taken it goes on, and with small requests in flight it waits
    for them as a stream does."""
    budget = ExportBudget(active=1, share=0.5)
    pacer = budget.stream()
    await pacer.pace()  # the stream's one place: none left
    await asyncio.wait_for(pacer.beside(), 1.0)
    assert budget._free._value == 0 and pacer.holding  # took none, gave none back
    with budget.small_request():
        await asyncio.sleep(0.05)  # a slice of work of 50 ms beside the stream...
        waiting = asyncio.create_task(pacer.beside())
        await _turns()
        assert not waiting.done()  # ...then it gives way while the small request runs
    await asyncio.wait_for(waiting, 1.0)  # and goes on when it ends
    assert budget.gave_way == 1
    pacer.close()
    assert budget._free._value == 1
