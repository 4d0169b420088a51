"""A ZIP streamed from async members: stream-zip, deflate level 1 through isal, on its own thread.

stream-zip is synchronous and pulls its input. Its `async_stream_zip` bridges that through the
event loop's default executor, one hop per chunk, and never closes the members it stops
reading. Here the zip runs on a thread of its own per bundle (so it cannot starve, or be
starved by, `asyncio.to_thread` users such as the media store), pulls each chunk from the loop
with `run_coroutine_threadsafe`, and on an early exit is stopped and its sources closed.

The central directory is written only after the last member: if any source raises, the
error propagates out of the iterator and the bytes produced so far are not a readable ZIP.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime
from typing import Any, TypeVar, cast

from isal import isal_zlib
from stream_zip import ZIP_64, Method, stream_zip

T = TypeVar("T")
Member = tuple[str, datetime, int, Method, AsyncIterable[bytes]]
FILE_MODE = 0o100644  # a regular file, rw-r--r--
CHUNK = 1 << 20


def _deflate_level_1() -> Any:
    # isal's deflate at level 1 runs at about 1.1 GB/s here; zlib at level 9 (stream-zip's
    # default) at 53 MB/s, slower than COPY itself (FINDINGS.md, "Streaming exports").
    return isal_zlib.compressobj(1, isal_zlib.DEFLATED, -zlib.MAX_WBITS)


def member(name: str, modified_at: datetime, chunks: AsyncIterable[bytes]) -> Member:
    # ZIP_64 for every member: one past 4 GiB would make every later ZIP_32 member fail.
    return (name, modified_at, FILE_MODE, ZIP_64, chunks)


# Clean-ups of ZIPs whose reader left, running on their own (asyncio keeps only weak references
# to tasks).
_CLEANING: set[asyncio.Future[None]] = set()


class _Closed(Exception):
    """Raised on the zip thread when the reader has gone away."""


class _Bridge:
    """Lets the zip thread pull from async iterators that live on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.closing = False
        self.pending: Future[Any] | None = None
        self.opened: list[AsyncIterator[Any]] = []

    def pull(self, source: AsyncIterable[T]) -> Iterator[T]:
        """Runs on the zip thread: each item is awaited on the loop."""
        it = aiter(source)
        with self.lock:
            self.opened.append(it)
        while True:
            with self.lock:
                if self.closing:
                    raise _Closed
                fut = asyncio.run_coroutine_threadsafe(_next(it), self.loop)
                self.pending = fut
            item = fut.result()
            if item is _DONE:
                return
            yield item

    def stop(self) -> None:
        """On the loop: no new pulls; a pull in flight is cancelled."""
        with self.lock:
            self.closing = True
            pending = self.pending
        if pending is not None:
            pending.cancel()

    async def close_sources(self) -> None:
        for it in reversed(self.opened):
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                # The bundle's own error (or the reader's exit) is what matters now.
                with suppress(Exception):
                    await aclose()


_DONE: Any = object()


async def _next(it: AsyncIterator[T]) -> T:
    return await anext(it, _DONE)


async def zip_stream(
    members: AsyncIterable[Member], chunk_size: int = CHUNK
) -> AsyncGenerator[bytes, None]:
    """The ZIP of `members`, in chunks of about `chunk_size` bytes, as it is produced."""
    loop = asyncio.get_running_loop()
    bridge = _Bridge(loop)
    files = (
        (name, at, mode, method, bridge.pull(chunks))
        for name, at, mode, method, chunks in bridge.pull(members)
    )
    # stream_zip is a generator function (typed as returning an Iterable): close() exists.
    zipped = cast(
        Generator[bytes, None, None],
        stream_zip(files, chunk_size=chunk_size, get_compressobj=_deflate_level_1),
    )
    executor = ThreadPoolExecutor(1, thread_name_prefix="dsar-zip")
    step: Future[bytes] | None = None
    try:
        while True:
            step = executor.submit(next, zipped, _DONE)
            chunk = await asyncio.wrap_future(step)
            step = None
            if chunk is _DONE:
                return
            yield chunk
    finally:
        bridge.stop()

        async def clean_up() -> None:
            if step is not None and not step.done():
                # Left mid-chunk (the reader was cancelled): wait until the zip thread has seen
                # the stop, so that nothing runs there while the sources are being closed.
                waiting = asyncio.wrap_future(step)
                await asyncio.wait([waiting])
                if not waiting.cancelled():
                    waiting.exception()
            zipped.close()
            await bridge.close_sources()
            executor.shutdown(wait=False)

        # In a task of its own, which a second cancel of the reader (a timeout, a shutdown)
        # does not reach: the reader leaves at once, and the sources, with the connections they
        # hold, are closed all the same instead of when the garbage collector finds them.
        cleaning = asyncio.ensure_future(clean_up())
        _CLEANING.add(cleaning)
        cleaning.add_done_callback(_CLEANING.discard)
        await asyncio.shield(cleaning)
