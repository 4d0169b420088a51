"""Admission by waiting time: a request waits for one of `slots` execution slots, first come first
served, and is refused only when it could not start within `wait` seconds.

A burst larger than the slots is queued and served as slots come free (200 concurrent small
queries are all answered), while the work in progress, and so the memory and connections it
holds, stays bounded by `slots`. The queue is bounded too (`queue` waiters): past it a request is
refused at once, as it would not start in time anyway. Refusals become 503 with Retry-After at
the edge (api/middleware.py).

Everything here lives in one process and decides nothing but this process's own pace: with
several processes each has its own slots (docs/OPERATIONS.md, Several processes).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

SLOTS = 16
QUEUE = 1024
WAIT = 2.0


class Refused(Exception):
    """No slot came free in time, or the queue was full."""


class Admission:
    def __init__(self, slots: int = SLOTS, queue: int = QUEUE, wait: float = WAIT) -> None:
        self.slots = slots
        self.queue = queue
        self.wait = wait
        self.busy = 0
        # Each waiter: its future, and the number of busy slots below which it may start.
        self._waiters: collections.deque[tuple[asyncio.Future[None], int]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, limit: int | None = None) -> None:
        """Take a slot, waiting at most `wait` seconds; `limit` (at most `slots`) keeps the
        slots above it for others. Raises `Refused`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (future, self.slots if limit is None else min(limit, self.slots))
        self._waiters.append(entry)
        self._wake()
        if future.done():
            return
        if len(self._waiters) > self.queue:
            self._waiters.remove(entry)
            raise Refused
        try:
            async with asyncio.timeout(self.wait):
                await future
        except TimeoutError:
            if _granted(future):
                return  # a slot came free just as the wait ended: it is ours
            self._forget(entry)
            raise Refused from None
        except BaseException:
            if _granted(future):
                self.release()
            else:
                self._forget(entry)
            raise

    def _forget(self, entry: tuple[asyncio.Future[None], int]) -> None:
        with contextlib.suppress(ValueError):  # `_wake` may have dropped it already
            self._waiters.remove(entry)

    def release(self) -> None:
        self.busy -= 1
        self._wake()

    def _wake(self) -> None:
        """Slots to waiters in their order; one kept below its limit lets the next go first."""
        for entry in list(self._waiters):
            if self.busy >= self.slots:
                return
            future, limit = entry
            if future.done():
                # Its wait ended (cancelled by its deadline) and it has not run since: the
                # slot goes to the next one.
                self._waiters.remove(entry)
            elif self.busy < limit:
                self._waiters.remove(entry)
                self.busy += 1
                future.set_result(None)


def _granted(future: asyncio.Future[None]) -> bool:
    return future.done() and not future.cancelled()
