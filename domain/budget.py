"""Exports give way to small requests: one budget per process that every export stream shares.

An export is heavy and long (a million rows is seconds of COPY, hashing, deflate and HTML), a
person's own query is light and short; on a process whose event loop and cores the two share,
four exports at full speed left a small query waiting behind their chunks (issue 19, item 4).
So an export stream stops at a *pace point* between its slices of work (a chunk of a data
file, a run of records or a whole web page), and there:

- gives up its place among the `active` streams that may work at once (a semaphore, taken
  back in order of arrival), so that with many exports only a few pull at a time;
- while small requests are waiting or in flight, waits for them to end, but no longer than
  keeps the exports' share of the time at `share`: every slice of `t` seconds adds
  `t * (1 - share) / share` to a pause the process's exports serve together (one stream's
  share would let several streams take it several times over). With small requests every
  moment, the exports still move on at about `share` of their own pace, so each still ends,
  at most `active / share` times later than alone; without any, they never wait.

An export that waits holds its snapshot and connection and is finished whole: nothing here
ends a stream, it only spaces its slices. A paused export stops reading its COPY, which
stops the database backend producing it (the stream's queue is bounded, `stores/streams.py`).

Everything here is one process's own pace: with several processes each paces its own exports
against its own small requests; nothing in it is needed for a correct answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

ACTIVE = 2
# 0.1: in scenario 7 of the benchmark (2 cores), 0.25 left the small queries' p99 at 4.5x idle
# and 0.1 at 2x, the exports' wall time about the same (a load at half the saturated rate
# leaves gaps that the exports fill at full speed).
SHARE = 0.1


class ExportBudget:
    def __init__(self, active: int = ACTIVE, share: float = SHARE) -> None:
        if active < 1 or not 0 < share <= 1:
            raise ValueError("active must be at least 1 and share in (0, 1]")
        self.active = active
        self.share = share
        self.small = 0  # small requests waiting or in flight
        self.gave_way = 0  # pace points at which an export waited for small requests
        self._free = asyncio.Semaphore(active)
        self._quiet = asyncio.Event()  # set while no small request is in flight
        self._quiet.set()
        # Loop time before which no export slice starts while small requests are in flight.
        self._resume_at = 0.0

    def begin_small(self) -> None:
        """A small request is waiting for its turn or being answered."""
        self.small += 1
        self._quiet.clear()

    def end_small(self) -> None:
        self.small -= 1
        if self.small == 0:
            self._quiet.set()
            self._resume_at = 0.0  # a pause owed to small requests ends with them

    @contextlib.contextmanager
    def small_request(self) -> Iterator[None]:
        """Marks a small request for as long as the block runs."""
        self.begin_small()
        try:
            yield
        finally:
            self.end_small()

    def stream(self) -> Pacer:
        return Pacer(self)

    async def _give_way(self, ran: float) -> None:
        """After a slice of `ran` seconds: returns when no small request is in flight, or when
        the exports have paused long enough to keep their share."""
        self.gave_way += 1
        now = asyncio.get_running_loop().time()
        self._resume_at = max(self._resume_at, now) + ran * (1 - self.share) / self.share
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(self._resume_at):
                await self._quiet.wait()


class Pacer:
    """One export stream's pace points; `close()` when the stream ends, however it ends."""

    def __init__(self, budget: ExportBudget) -> None:
        self.budget = budget
        self.holding = False
        self.resumed = 0.0  # loop time the current slice began (0: resting)
        self.worked = 0.0  # the slice's own work before it rested
        self.beside_at = 0.0  # loop time the work beside it last went on from a pace point

    def rest(self) -> None:
        """The stream now waits on its reader (a client's network), which is not its own work:
        its place among the active streams goes back at once, so that clients that stop
        reading hold no other export up, and the wait is not counted into the slice that the
        next pace point makes the exports pay for."""
        self._give_back()
        if self.resumed:
            self.worked += asyncio.get_running_loop().time() - self.resumed
            self.resumed = 0.0

    async def pace(self) -> None:
        budget = self.budget
        loop = asyncio.get_running_loop()
        ran = self.worked + (loop.time() - self.resumed if self.resumed else 0.0)
        self.worked = 0.0
        self._give_back()
        if budget.small and budget.share < 1:
            await budget._give_way(ran)
        else:
            await asyncio.sleep(0)  # whatever else is ready on the loop runs first
        await budget._free.acquire()
        self.holding = True
        self.resumed = loop.time()

    async def beside(self) -> None:
        """A pace point of work done beside the stream's own, in a task of its own (the web
        pages a bundle reads and renders while its data file streams, exporters/bundle.py): it
        gives way to small requests as `pace` does, but takes no place among the active
        streams. It works only while its stream does, on that stream's place; a place of its
        own, held while it waits for its stream to write its pages, and its stream waiting for
        a place, left every place taken by exports waiting on each other for good."""
        budget = self.budget
        loop = asyncio.get_running_loop()
        now = loop.time()
        ran = now - self.beside_at if self.beside_at else 0.0
        if budget.small and budget.share < 1:
            await budget._give_way(ran)
        else:
            await asyncio.sleep(0)
        self.beside_at = loop.time()

    def close(self) -> None:
        self._give_back()

    def _give_back(self) -> None:
        """The stream's place among the active streams, if it holds one, goes back."""
        if self.holding:
            self.holding = False
            self.budget._free.release()
