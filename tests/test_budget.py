"""The export budget (domain/budget.py): export streams give way to small requests at their pace
points and at most `active` of them work at once; its settings are validated. The budget with
real exports and a real server: tests/reliability/test_export_budget.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from api.settings import Settings, SettingsError
from domain.budget import ACTIVE, SHARE, WINDOW, WINDOW_BYTES, ExportBudget


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
    budget.rate = 1000.0
    pacer = budget.stream()
    for _ in range(100):
        await pacer.pace(10_000)
    pacer.close()
    assert budget.gave_way == 0


async def test_the_exports_measure_their_pace_while_nothing_holds_them_back() -> None:
    budget = ExportBudget(active=1, share=0.1)
    pacer = budget.stream()
    await pacer.pace()  # the window begins
    await asyncio.sleep(WINDOW)
    await pacer.pace(WINDOW_BYTES - 1)  # not enough to measure
    assert budget.rate == 0
    await pacer.pace(1)  # and now the window ends
    # About 20 MB/s: 1 MB in WINDOW (slower when the loop is late, never faster).
    assert 0.5 * WINDOW_BYTES / WINDOW < budget.rate <= WINDOW_BYTES / WINDOW
    with budget.small_request():
        await pacer.pace(20_000)  # from now on it keeps its share: 20 kB owes about 10 ms
    assert budget.gave_way == 1
    pacer.close()


async def test_before_its_pace_is_measured_a_stream_keeps_its_share_of_time() -> None:
    """A new process under small requests from the start: a slice's pause is for its time,
    while small requests are in flight, and ends with them (no linger)."""
    budget = ExportBudget(active=2, share=0.01, linger=10)
    pacer = budget.stream()
    await pacer.pace()
    # Its last slice "took" 100 s: it may wait up to 99 times that for the small requests.
    pacer.resumed -= 100
    with budget.small_request():
        waiting = asyncio.create_task(pacer.pace(1_000_000))
        await _turns()
        assert not waiting.done() and budget.gave_way == 1
    await _until(waiting.done)  # the small request ended: the stream goes on at once
    await waiting
    assert budget.rate == 0
    pacer.close()


async def test_before_its_pace_is_measured_a_stream_given_its_share_goes_on() -> None:
    budget = ExportBudget(active=1, share=0.5)
    pacer = budget.stream()
    await pacer.pace()
    with budget.small_request():
        for _ in range(5):
            await asyncio.sleep(0.001)
            await pacer.pace()  # each wait is as long as the slice before it: never for ever
    assert budget.gave_way == 5
    pacer.close()


async def test_a_stream_waits_for_small_requests_in_flight_and_their_linger() -> None:
    budget = ExportBudget(active=2, share=0.01, linger=0.05)
    budget.rate = 1.0  # a byte a second: any slice owes a long pause
    pacer = budget.stream()
    await pacer.pace()
    loop = asyncio.get_running_loop()
    with budget.small_request():
        waiting = asyncio.create_task(pacer.pace(100))  # owes 100 / (0.01 * 1) seconds
        await _turns()
        assert not waiting.done() and budget.gave_way == 1
    ended = loop.time()
    await asyncio.wait_for(waiting, 1.0)  # the small request ended: it goes on after the linger
    assert loop.time() - ended >= 0.05
    pacer.close()


async def test_a_small_request_during_the_linger_keeps_the_stream_waiting() -> None:
    budget = ExportBudget(active=1, share=0.01, linger=0.05)
    budget.rate = 1.0
    pacer = budget.stream()
    await pacer.pace()
    with budget.small_request():
        waiting = asyncio.create_task(pacer.pace(100))
        await _turns()
    await asyncio.sleep(0.03)
    with budget.small_request():  # begins within the linger
        await asyncio.sleep(0.05)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 1.0)
    pacer.close()


async def test_under_small_requests_that_never_end_the_exports_keep_their_share_of_bytes() -> None:
    """Busy all the time, exports pass `share` of their unimpeded bytes per second: each waits
    for the bytes it passed, not for the time it took (the loop's other work, its client)."""
    budget = ExportBudget(active=2, share=0.5)
    budget.rate = 1_000_000.0  # 1 MB/s unimpeded: 500 kB/s while busy
    streams = [budget.stream(), budget.stream()]
    loop = asyncio.get_running_loop()
    with budget.small_request():
        for pacer in streams:
            await pacer.pace()
        start = loop.time()
        for _ in range(5):
            for pacer in streams:
                await pacer.pace(10_000)  # 100 kB in all: owes 0.2 s
        took = loop.time() - start
    assert budget.gave_way == 10
    assert 0.17 <= took < 0.5, took
    for pacer in streams:
        pacer.close()


async def test_a_slow_clients_wait_is_not_counted_as_the_streams_work() -> None:
    """The pause a stream makes the exports serve while small requests run is for the bytes it
    passed, not for the time its chunk waited on a client that reads slowly."""
    budget = ExportBudget(active=2, share=0.1)
    budget.rate = 1_000_000.0
    slow = budget.stream()
    await slow.pace()
    slow.rest()
    await asyncio.sleep(0.3)  # its client takes 0.3 s to read its last 1 kB
    loop = asyncio.get_running_loop()
    with budget.small_request():
        start = loop.time()
        # It owes 10 ms of pause for its 1 kB at 100 kB/s, not 2.7 s for the 0.3 s wait.
        await asyncio.wait_for(slow.pace(1000), 1.0)
        assert budget.gave_way == 1
        assert loop.time() - start >= 0.009
    slow.close()


async def test_the_pace_is_measured_only_while_nothing_holds_the_exports_back() -> None:
    """No window of measure spans a pause, nor a change in the number of streams: neither is
    the exports' unimpeded pace."""
    budget = ExportBudget(active=2, share=0.5, linger=0)
    pacer = budget.stream()
    await pacer.pace()  # a window begins
    with budget.small_request():
        await pacer.pace(1)  # held (on time, the pace not measured yet): the window is dropped
    await asyncio.sleep(WINDOW)
    await pacer.pace(WINDOW_BYTES)  # a new window begins here, after the pause
    assert budget.rate == 0
    other = budget.stream()
    await asyncio.sleep(WINDOW)
    await pacer.pace(WINDOW_BYTES)  # two streams now: the window begins again
    assert budget.rate == 0
    await asyncio.sleep(WINDOW)
    await pacer.pace(WINDOW_BYTES)
    assert 0 < budget.rate <= WINDOW_BYTES / WINDOW
    pacer.close()
    other.close()
    assert budget.streams == 0


async def test_no_window_spans_the_time_between_two_exports() -> None:
    """Exports under 1 MB each, one after another: no window may close over the idle time
    between them (it would read a pace of a few bytes a second, and hold the next export
    back for hours)."""
    budget = ExportBudget(active=1, share=0.1, linger=0)
    for _ in range(3):
        pacer = budget.stream()
        await pacer.pace()
        await pacer.pace(WINDOW_BYTES // 2)
        pacer.close()
        await asyncio.sleep(WINDOW)
    assert budget.rate == 0


async def test_the_time_every_stream_waits_on_its_client_is_not_in_the_pace() -> None:
    budget = ExportBudget(active=1, share=0.1, linger=0)
    pacer = budget.stream()
    await pacer.pace()  # the window begins
    await asyncio.sleep(WINDOW)  # working
    await pacer.pace(WINDOW_BYTES // 2)
    pacer.rest()  # its client reads slowly: 0.3 s
    await asyncio.sleep(0.3)
    await pacer.pace(WINDOW_BYTES // 2)
    # 1 MB in about 50 ms of work: about 20 MB/s, not the 3 MB/s of the 0.35 s it all took.
    assert budget.rate > 0.5 * WINDOW_BYTES / WINDOW
    pacer.close()
    assert (budget.streams, budget.resting) == (0, 0)


async def test_a_folders_files_are_charged_but_not_taken_for_the_pace() -> None:
    """Bytes passed with `measured=False` (media read from disk) end no window of measure and
    drop the one under way; while busy they owe their pause at the data files' pace."""
    budget = ExportBudget(active=1, share=0.5, linger=0)
    pacer = budget.stream()
    await pacer.pace()  # a window begins
    await asyncio.sleep(WINDOW)
    await pacer.pace(100 * WINDOW_BYTES, measured=False)
    assert budget.rate == 0  # the window is dropped; the next begins after the files
    await asyncio.sleep(WINDOW)
    await pacer.pace(WINDOW_BYTES)
    assert 0 < budget.rate <= WINDOW_BYTES / WINDOW  # the data file's pace alone
    loop = asyncio.get_running_loop()
    with budget.small_request():
        start = loop.time()
        await pacer.pace(int(0.05 * budget.rate), measured=False)  # owes 0.1 s at share 0.5
        assert loop.time() - start >= 0.09
    pacer.close()


async def test_the_pace_is_the_median_of_the_last_windows() -> None:
    """One window far off (a slow client; a folder's files read from disk) does not move it."""
    budget = ExportBudget(active=1, share=0.5, linger=0)
    pacer = budget.stream()
    await pacer.pace()

    async def window(size: int) -> None:
        await asyncio.sleep(WINDOW)
        await pacer.pace(size)

    for _ in range(3):
        await window(WINDOW_BYTES)
    usual = budget.rate
    assert 0 < usual <= WINDOW_BYTES / WINDOW
    await window(1000 * WINDOW_BYTES)  # one window a thousand times faster
    assert budget.rate <= WINDOW_BYTES / WINDOW
    for _ in range(5):
        await window(1000 * WINDOW_BYTES)  # most of the last windows now are
    assert budget.rate > 100 * WINDOW_BYTES / WINDOW
    pacer.close()


async def test_share_one_never_gives_way() -> None:
    budget = ExportBudget(active=1, share=1)
    budget.rate = 1.0
    pacer = budget.stream()
    with budget.small_request():
        for _ in range(5):
            await pacer.pace(1000)
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
    """A bundle rests while its reader holds a chunk for the client's network
    (exporters/_zip.py): `active` downloads whose clients stop reading leave the permits free,
    so another export, already streaming or new, passes its pace point at once."""
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


async def test_a_stream_closed_while_it_waits_for_a_place_takes_none() -> None:
    """A download that ends (its client gone) while its bundle waits at a pace point for a
    place: the place that frees later is not kept by the closed stream, and the next export
    gets it."""
    budget = ExportBudget(active=1, share=0.25)
    working, closing, after = budget.stream(), budget.stream(), budget.stream()
    await working.pace()
    waiting = asyncio.create_task(closing.pace())
    await _turns()
    assert not waiting.done()
    closing.close()
    working.close()  # the place frees: the closed stream's pace goes on, without it
    await asyncio.wait_for(waiting, 1.0)
    assert not closing.holding
    await asyncio.wait_for(after.pace(), 1.0)
    assert after.holding
    after.close()


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
    for bad in [{"active": 0}, {"share": 0.0}, {"share": 1.5}, {"linger": -1.0}]:
        with pytest.raises(ValueError):
            ExportBudget(**bad)  # type: ignore[arg-type]


async def test_work_beside_a_stream_gives_way_but_takes_no_place() -> None:
    """The web pages a bundle renders beside its data file (exporters/bundle.py) pace with
    `beside`: with every place taken it goes on, and with small requests in flight it waits
    for them as a stream does."""
    budget = ExportBudget(active=1, share=0.5)
    budget.rate = 10.0
    pacer = budget.stream()
    await pacer.pace()  # the stream's one place: none left
    await asyncio.wait_for(pacer.beside(), 1.0)
    assert budget._free._value == 0 and pacer.holding  # took none, gave none back
    with budget.small_request():
        # 50 bytes of work beside the stream (a page): 10 s owed...
        waiting = asyncio.create_task(pacer.beside(50))
        await _turns()
        assert not waiting.done()  # ...then it gives way while the small request runs
    await asyncio.wait_for(waiting, 1.0)  # and goes on when it ends
    assert budget.gave_way == 1
    pacer.close()
    assert budget._free._value == 1
