"""Exports give way to small requests: one budget per process that every export stream shares.

An export is heavy and long (a million rows is seconds of COPY, hashing, deflate and HTML), a
person's own query is light and short; on a process whose event loop and cores the two share,
four exports at full speed left a small query waiting behind their chunks (issue 19, item 4).
So an export stream stops at a *pace point* between its slices of work (a chunk of a data
file, a run of records or a whole web page, a chunk handed to its client), and there:

- gives up its place among the `active` streams that may work at once (a semaphore, taken
  back in order of arrival), so that with many exports only a few pull at a time;
- while the process is *busy*, waits, but no longer than keeps the exports' pace at `share` of
  the pace they keep when it is not. Busy: small requests are waiting or in flight, or the
  last of them ended less than `linger` seconds ago. The linger matters: small requests come
  a few milliseconds apart under load, and exports that ran at full speed in every gap left
  the next small request both cores busy with their COPYs and deflate (scenario 7 of the
  benchmark: p99 3.2x to 3.5x idle without it).

The share is kept on bytes, not on time: the exports of a process together pass at most `share`
times the bytes per second they passed when nothing held them back (`rate`, measured over
windows of at least `WINDOW` seconds and `WINDOW_BYTES` in which they did not wait and the
number of streams stayed the same, counting only the time some stream was not waiting on its
client). The bytes are counted where they are read or made (a data file's chunk from its store,
a web page), not where the ZIP hands them on: its chunks of 1 MB let the exports run free for a
tenth of a second between two charges (p99 215 to 455 ms in scenario 7). Time with a linger was
tried first and failed: a slice's wall time under load holds the small requests' own work on the
shared loop and waits on the ZIP thread and the COPY, so the exports got 2 to 5 % of their pace
rather than 10 %, and four exports of a million rows took 150 to 300 s rather than 10. Bytes are
the exports' own: with small requests every moment, the exports together still pass `share` of
their measured pace, so they take at most about `1 / share` times as long as they would without
the small requests (their clients reading as fast). That holds as far as the measure is true of
the work. A folder's files (read from disk and deflated, several times a COPY's pace) are
charged at the data files' pace and never measured (`measured=False`: their bytes end the window
under way), so media-heavy exports go slower than `share` of their own pace under load, never
faster; but a MySQL store's rows, encoded in Python, cost more CPU a byte than a PostgreSQL
COPY, and a pace measured with one stream is applied to four. And it holds within an export
snapshot's bound (600 s, `stores/streams.py`, `stores/mysql_streams.py`): an export that would
need longer fails as if its store had. Until a process has measured `rate`, the share is kept on
time as before, while small requests are in flight only (`_account`); without small requests
exports never wait.

An export that waits holds its snapshot and connection and is finished whole: nothing here
ends a stream, it only spaces its slices. A paused export stops reading its COPY, which
stops the database backend producing it (the stream's queue is bounded, `stores/streams.py`).

Everything here is one process's own pace: with several processes each paces its own exports
against its own small requests; nothing in it is needed for a correct answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque
from collections.abc import Iterator

ACTIVE = 2
# 0.1: in scenario 7 of the benchmark (2 cores, small queries at half the rate that saturates
# the process, all along), four exports of 1M rows kept the small queries' p99 at 2.15x to
# 2.98x idle (median 2.20x) and took 35.5 s; at 0.2, 2.5x to 7.4x (median 3.0x) and 20 s.
# Without the linger and with the share kept on time, as before: 2.8x to 10.6x, 10 to 15 s.
SHARE = 0.1
# Seconds a process stays busy after its last small request ends: longer than the gap between
# two small requests under a steady load (2 to 3 ms at 115 to 220 a second on two cores).
LINGER = 0.01
# A measure of the exports' unimpeded pace spans at least WINDOW seconds and WINDOW_BYTES:
# one that spans the start of an export (its snapshot, the person's keys) or a pause between
# its chunks would read a pace far below what its data files stream at. The pace is the median
# of the last MEASURES windows: one odd window (a store that answered slowly, a stream whose
# rows are wider) moves it no more than any other single window.
WINDOW = 0.05
WINDOW_BYTES = 1 << 20
MEASURES = 9


class ExportBudget:
    def __init__(self, active: int = ACTIVE, share: float = SHARE, linger: float = LINGER) -> None:
        if active < 1 or not 0 < share <= 1 or linger < 0:
            raise ValueError("active must be at least 1, share in (0, 1] and linger not negative")
        self.active = active
        self.share = share
        self.linger = linger
        self.small = 0  # small requests waiting or in flight
        self.gave_way = 0  # pace points at which an export waited while the process was busy
        self.streams = 0  # export streams open
        self.resting = 0  # of them, those waiting on their clients (`Pacer.rest`)
        self.passed = 0  # bytes the export streams have read or made (`Pacer.pace`)
        self.rate = 0.0  # their unimpeded bytes per second together (0: not measured yet)
        self._free = asyncio.Semaphore(active)
        self._quiet = asyncio.Event()  # set while no small request is in flight
        self._quiet.set()
        self._quiet_at = 0.0  # loop time the last small request's linger ends
        # Loop time before which no export slice starts while the process is busy.
        self._resume_at = 0.0
        # Seconds in which at least one stream was working (not every one waiting on its
        # client), up to `_clock_at`: what a window of measure counts.
        self._worked = 0.0
        self._clock_at = 0.0
        # The window the unimpeded pace is being measured over: (`_worked`, `passed`) at its
        # start; None when the next pace point not held begins one.
        self._window: tuple[float, int] | None = None
        self._measures: deque[float] = deque(maxlen=MEASURES)

    def begin_small(self) -> None:
        """A small request is waiting for its turn or being answered."""
        self.small += 1
        self._quiet.clear()

    def end_small(self) -> None:
        self.small -= 1
        if self.small == 0:
            self._quiet_at = asyncio.get_running_loop().time() + self.linger
            self._quiet.set()

    @contextlib.contextmanager
    def small_request(self) -> Iterator[None]:
        """Marks a small request for as long as the block runs."""
        self.begin_small()
        try:
            yield
        finally:
            self.end_small()

    def busy(self, now: float) -> bool:
        """Small requests in flight, or in their linger; before the exports' pace is measured,
        only in flight (see `_account`)."""
        return self.small > 0 or (self.rate > 0 and now < self._quiet_at)

    def stream(self) -> Pacer:
        return Pacer(self)

    def _tick(self) -> None:
        """Brings `_worked` up to now; called before the streams or their rests change (also
        from `Pacer.close`, which may run where no loop does)."""
        now = time.monotonic()
        if self.streams > self.resting:
            self._worked += now - self._clock_at
        self._clock_at = now

    def _opened(self, change: int) -> None:
        self._tick()
        self.streams += change
        self._window = None  # a pace of one stream is not one of two, nor of none between

    def _account(self, now: float, ran: float, size: int) -> bool:
        """At every pace point, after a slice of `ran` seconds that passed `size` bytes: charges
        them and measures the unimpeded pace. True when the exports must give way.

        Until the pace is measured (a new process, small requests all along) the share is kept
        on time, as far as it can be: a slice of `ran` seconds adds `ran * (1 - share) / share`
        to the pause, small requests in flight only (no linger), as before the share was kept
        on bytes; the exports measure their pace in the first window without small requests
        (`WINDOW` of work, `WINDOW_BYTES`, the same streams throughout)."""
        held = self.share < 1 and self.busy(now)
        self._tick()
        if held:
            self._window = None
            start = max(self._resume_at, now)
            if self.rate:
                self._resume_at = start + size / (self.share * self.rate)
            else:
                self._resume_at = start + ran * (1 - self.share) / self.share
            return True
        self._resume_at = 0.0  # a pause owed to small requests ends with them
        window = self._window
        if window is None:
            self._window = (self._worked, self.passed)
        elif self._worked - window[0] >= WINDOW and self.passed - window[1] >= WINDOW_BYTES:
            self._measures.append((self.passed - window[1]) / (self._worked - window[0]))
            self.rate = statistics.median(self._measures)
            self._window = (self._worked, self.passed)
        return False

    async def _give_way(self) -> None:
        """Returns when the process is no longer busy, or when the exports have paused long
        enough to keep their share."""
        loop = asyncio.get_running_loop()
        waited = False
        while (now := loop.time()) < self._resume_at and self.busy(now):
            if not waited:
                waited = True
                self.gave_way += 1
            if self.small:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(self._resume_at):
                        await self._quiet.wait()
            else:
                await asyncio.sleep(min(self._quiet_at, self._resume_at) - now)

    async def _pace(self, size: int, ran: float, measured: bool) -> None:
        self.passed += size
        if not measured and size:
            self._window = None  # the pace of a folder's files is not a data file's
        if self._account(asyncio.get_running_loop().time(), ran, size):
            await self._give_way()
        else:
            await asyncio.sleep(0)  # whatever else is ready on the loop runs first


class Pacer:
    """One export stream's pace points; `close()` when the stream ends, however it ends."""

    def __init__(self, budget: ExportBudget) -> None:
        self.budget = budget
        self.holding = False
        self.closed = False
        self.resting = False
        # For the share on time, until the pace is measured (`ExportBudget._account`):
        self.resumed = 0.0  # loop time the current slice began (0: resting)
        self.worked = 0.0  # the slice's own work before it rested
        self.beside_at = 0.0  # loop time the work beside it last went on from a pace point
        budget._opened(1)

    def rest(self) -> None:
        """The stream now waits on its reader (a client's network), which is not its own work:
        its place among the active streams goes back at once, so that clients that stop
        reading hold no other export up, and the wait counts neither as bytes nor as time (in
        the pause it owes, or in the exports' pace while no other stream works). Called in
        the task that runs the stream's pace points (exporters/_zip.py), never beside one."""
        self._give_back()
        if not self.resting:
            self.budget._tick()
            self.resting = True
            self.budget.resting += 1
        if self.resumed:
            self.worked += asyncio.get_running_loop().time() - self.resumed
            self.resumed = 0.0

    async def pace(self, size: int = 0, *, measured: bool = True) -> None:
        """After a slice of the stream's work that read or made `size` bytes (what the exports'
        share counts); `measured=False`: bytes that must not be taken for the exports' pace
        (exporters/pages.py, `Pace`)."""
        loop = asyncio.get_running_loop()
        ran = self.worked + (loop.time() - self.resumed if self.resumed else 0.0)
        self.worked = 0.0
        self._back()
        self._give_back()
        await self.budget._pace(size, ran, measured)
        await self.budget._free.acquire()
        if self.closed:
            # Closed while it waited (its download ended): the place goes back, for good.
            self.budget._free.release()
            return
        self.holding = True
        self.resumed = loop.time()

    async def beside(self, size: int = 0, *, measured: bool = True) -> None:
        """A pace point of work done beside the stream's own, in a task of its own (the web
        pages a bundle reads and renders while its data file streams, exporters/bundle.py): it
        gives way to small requests as `pace` does, but takes no place among the active
        streams. It works only while its stream does, on that stream's place; a place of its
        own, held while it waits for its stream to write its pages, and its stream waiting for
        a place, left every place taken by exports waiting on each other for good."""
        loop = asyncio.get_running_loop()
        ran = loop.time() - self.beside_at if self.beside_at else 0.0
        await self.budget._pace(size, ran, measured)
        self.beside_at = loop.time()

    def close(self) -> None:
        self._give_back()
        if not self.closed:
            self._back()
            self.closed = True
            self.budget._opened(-1)

    def _back(self) -> None:
        """The stream no longer waits on its client."""
        if self.resting:
            self.budget._tick()
            self.resting = False
            self.budget.resting -= 1

    def _give_back(self) -> None:
        """The stream's place among the active streams, if it holds one, goes back."""
        if self.holding:
            self.holding = False
            self.budget._free.release()
