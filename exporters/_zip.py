"""A ZIP streamed from async members: stream-zip, deflate level 1 through isal, on its own thread.

stream-zip is synchronous and pulls its input. Its `async_stream_zip` bridges that through the
event loop's default executor, one hop per chunk, and never closes the members it stops
reading. Here the members are read on the event loop by a task of their own (the feeder), which
hands their chunks to the zip's own thread (one per bundle, so it cannot starve, or be starved
by, `asyncio.to_thread` users such as the media store) through a bounded queue, synchronous on
the thread's side and asynchronous on the loop's (janus). The feeder reads the next chunks while
the thread deflates the last ones, and neither side wakes the other but when the queue was empty
or full: at most `AHEAD_BYTES` wait. The feeder reads only while the ZIP's reader waits for a
chunk (`_Turn`). The first version asked the loop for each chunk and waited for it (two thread
switches a chunk, and the loop and the thread never worked at once): a bundle's small members
(its web pages, schemas, a category of a few records) cost a millisecond or so each in hops.

The central directory is written only after the last member: if any source raises, the feeder
stops the queue, the zip thread stops where it is, and the iterator raises the source's own
error; the bytes produced so far are not a readable ZIP. A reader that leaves early stops the
thread and closes the sources.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterator,
)
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime
from typing import Any, cast

import janus
from isal import isal_zlib
from stream_zip import ZIP_64, Method, stream_zip

Member = tuple[str, datetime, int, Method, AsyncIterable[bytes]]
FILE_MODE = 0o100644  # a regular file, rw-r--r--
CHUNK = 1 << 20
# Bytes read ahead of the zip thread (and one chunk more, however large). The web pages of a
# category with a million records are 3.6 MB: they wait whole, read while the zip thread still
# deflates the end of the data file. In a queue full, every chunk taken wakes the loop, which
# then waits for the thread to hand it the interpreter: 0.7 ms a page at 8 chunks ahead,
# 0.25 ms with room for all of them (in process, the heavy person's bundle).
AHEAD_BYTES = 4 * 1024 * 1024


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


class _Stopped(Exception):
    """Raised on the zip thread when the feeder stopped (a source failed, the reader left)."""


# In the queue, between the chunks: a member's end, the last member's end.
_MEMBER_END: Any = object()
_END: Any = object()
_DONE: Any = object()


class _Ahead(janus.Queue[Any]):
    """The queue, bounded by bytes: a chunk weighs its length, any other item one."""

    def _init(self, maxsize: int) -> None:
        self._items: deque[Any] = deque()
        self._weight = 0

    def _qsize(self) -> int:
        return self._weight

    def _put(self, item: Any) -> None:
        self._items.append(item)
        self._weight += _weight(item)

    def _get(self) -> Any:
        item = self._items.popleft()
        self._weight -= _weight(item)
        return item


def _weight(item: Any) -> int:
    return max(len(item), 1) if isinstance(item, bytes | bytearray | memoryview) else 1


class _Turn:
    """When the feeder may read its sources: only while the ZIP's reader waits for its next
    chunk. Reading a source is an export's work, and all of it runs in the feeder's task: its
    pace points (the bundle's, domain/budget.py `Pacer`) and, when it finds the reader holding
    a chunk (a client's network, which is not the export's work), its `rest`. A client that
    stops reading stops the reading, and the export's place in the budget goes back."""

    def __init__(self, rest: Callable[[], None]) -> None:
        self.wanted = asyncio.Event()  # the reader waits for a chunk
        self.rest = rest

    async def read(self, it: AsyncIterator[Any]) -> Any:
        """The next item of `it`, or `_DONE`."""
        if not self.wanted.is_set():
            self.rest()
            await self.wanted.wait()
        return await anext(it, _DONE)


class _Feeder:
    """On the loop: each member's head, its chunks and its end, in order, then the end.

    A member's chunks are read to their end before the next member is asked for, as stream-zip
    itself did (a bundle counts a member's bytes once it is asked for the next one). Once it
    closes its sources (a source failed, the queue was shut) it is no longer cancelled
    (`stop`): a cancel then would cut a snapshot's rollback or its connections' return."""

    def __init__(
        self, members: AsyncIterable[Member], queue: janus.AsyncQueue[Any], turn: _Turn
    ) -> None:
        self.turn = turn
        self.closing = False
        self.task = asyncio.create_task(self._run(members, queue))

    async def _run(self, members: AsyncIterable[Member], queue: janus.AsyncQueue[Any]) -> None:
        them = aiter(members)
        try:
            while (head := await self.turn.read(them)) is not _DONE:
                name, at, mode, method, chunks = head
                await queue.put((name, at, mode, method))
                source = aiter(chunks)
                try:
                    while (chunk := await self.turn.read(source)) is not _DONE:
                        await queue.put(chunk)
                except BaseException:
                    await self._close(source)
                    raise
                await queue.put(_MEMBER_END)
            await queue.put(_END)
        except BaseException:
            # Stopped early: closed at once (a COPY, an open file, a snapshot's connections).
            await self._close(them)
            raise

    async def _close(self, it: Any) -> None:
        """Closes a source on the way out; what went wrong first is what the feeder raises."""
        self.closing = True
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            with suppress(Exception):
                await aclose()

    def stop(self) -> None:
        if not self.closing:
            self.task.cancel()


def _get(queue: janus.SyncQueue[Any]) -> Any:
    try:
        return queue.get()
    except janus.SyncQueueShutDown:
        raise _Stopped from None


def _chunks(queue: janus.SyncQueue[Any]) -> Iterator[bytes]:
    while (chunk := _get(queue)) is not _MEMBER_END:
        yield chunk


def _files(queue: janus.SyncQueue[Any]) -> Iterator[Any]:
    """On the zip thread: the members as stream-zip takes them."""
    while (head := _get(queue)) is not _END:
        yield (*head, _chunks(queue))


async def zip_stream(
    members: AsyncIterable[Member],
    chunk_size: int = CHUNK,
    rest: Callable[[], None] | None = None,
) -> AsyncGenerator[bytes, None]:
    """The ZIP of `members`, in chunks of about `chunk_size` bytes, as it is produced. `rest` is
    called when the members' reading waits for the ZIP's reader to take the chunk it holds."""
    queue = _Ahead(AHEAD_BYTES)
    turn = _Turn(rest or (lambda: None))
    feeding = _Feeder(members, queue.async_q, turn)
    feeder = feeding.task

    def stop_on_failure(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is not None:
            queue.shutdown(immediate=True)  # the zip thread raises _Stopped

    feeder.add_done_callback(stop_on_failure)
    # stream_zip is a generator function (typed as returning an Iterable): close() exists.
    zipped = cast(
        Generator[bytes, None, None],
        stream_zip(_files(queue.sync_q), chunk_size=chunk_size, get_compressobj=_deflate_level_1),
    )
    executor = ThreadPoolExecutor(1, thread_name_prefix="dsar-zip")
    step: Future[bytes] | None = None
    try:
        while True:
            step = executor.submit(next, zipped, _DONE)
            turn.wanted.set()
            try:
                chunk = await asyncio.wrap_future(step)
            except _Stopped:
                step = None
                await feeder  # raises what stopped it
                raise
            step = None
            turn.wanted.clear()
            if chunk is _DONE:
                return
            yield chunk
    finally:
        queue.shutdown(immediate=True)  # no-op once the feeder put the end and it was read
        # At once: a reader cancelled (a client gone) must not leave the feeder inside a source,
        # at a pace point of the export's budget, while the download ends its pacer.
        feeding.stop()

        async def clean_up() -> None:
            if step is not None and not step.done():
                # Left mid-chunk (the reader was cancelled): the shutdown wakes the zip thread;
                # wait until it has stopped, so that nothing runs there while the sources close.
                waiting = asyncio.wrap_future(step)
                await asyncio.wait([waiting])
                if not waiting.cancelled():
                    waiting.exception()
            zipped.close()
            # The bundle's own error (or the reader's exit) is what matters now.
            with suppress(Exception, asyncio.CancelledError):
                await feeder
            await queue.wait_closed()
            executor.shutdown(wait=False)

        # In a task of its own, which a second cancel of the reader (a timeout, a shutdown)
        # does not reach: the reader leaves at once, and the sources, with the connections they
        # hold, are closed all the same instead of when the garbage collector finds them.
        cleaning = asyncio.ensure_future(clean_up())
        _CLEANING.add(cleaning)
        cleaning.add_done_callback(_CLEANING.discard)
        await asyncio.shield(cleaning)
