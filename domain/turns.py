"""Exports take turns: at most `size` stream at once in this process, the others wait for a
turn before any byte of theirs is sent, or are refused before their headers.

An export holds a connection of each store while its categories stream, and the stores' pools
are small. Without turns, an export past the pool would wait for a connection half way through
its ZIP, then fail: a 200 that ends truncated, for a cause known before the headers left. With
turns, an export starts only when a connection of every store will come free for it (each
PostgreSQL store keeps `size` connections for exports' snapshots, in a pool apart from the
queries': stores/pool.py), and waits at most `wait` seconds for that; past it, 503 with
`Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging

from domain.errors import Overloaded

log = logging.getLogger("dsar.exports")


class Turns:
    def __init__(self, size: int, wait: float) -> None:
        self.size = size
        self.wait = wait
        self._free = asyncio.Semaphore(size)  # first come, first served

    async def take(self) -> None:
        """Waits for a turn; raises `Overloaded` when none came within `wait` seconds."""
        try:
            async with asyncio.timeout(self.wait):
                await self._free.acquire()
        except TimeoutError:
            log.warning("export refused: no turn came free", extra={"event": "export_turns"})
            raise Overloaded(max(1, int(self.wait))) from None

    def give_back(self) -> None:
        self._free.release()
