"""The streamed ZIP: members in order and whole, a failing source's own error, a bounded lead
of the loop over the zip thread, and sources closed whenever the reader stops."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from exporters import _zip
from exporters._zip import AHEAD_BYTES, Member, member, zip_stream

AT = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
CHUNK = 64 * 1024


class Source:
    """A member's chunks, counting what it handed out and whether it was closed."""

    def __init__(
        self, chunks: list[bytes], fail_after: int | None = None, delay: float = 0.0
    ) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.delay = delay
        self.given = 0
        self.closed = False
        self.watched = (0, asyncio.Event())  # set once `given` reaches the number

    async def reached(self, size: int) -> None:
        self.watched = (size, asyncio.Event())
        async with asyncio.timeout(20):
            await self.watched[1].wait()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for n, chunk in enumerate(self.chunks):
                if n == self.fail_after:
                    raise OSError("the store went away")
                self.given += len(chunk)
                if self.given >= self.watched[0]:
                    self.watched[1].set()
                yield chunk
                await asyncio.sleep(self.delay)
        finally:
            self.closed = True


async def listed(members: list[tuple[str, Source]], closed: list[bool]) -> AsyncIterator[Member]:
    try:
        for name, source in members:
            yield member(name, AT, source)
    finally:
        closed.append(True)


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def test_members_come_out_whole_and_in_order() -> None:
    sources = [
        ("data/big.bin", Source([os.urandom(CHUNK) for _ in range(40)])),
        ("data/empty.csv", Source([])),
        ("data/empty-chunk.csv", Source([b"", b"a,b\n", b""])),
        *((f"pages/p-{n}.html", Source([f"<p>{n}</p>".encode() * 100])) for n in range(60)),
        ("manifest.json", Source([b"{}"])),
    ]
    closed: list[bool] = []
    body = await read_all(zip_stream(listed(sources, closed), chunk_size=CHUNK))
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert z.namelist() == [name for name, _ in sources]
        for name, source in sources:
            assert z.read(name) == b"".join(source.chunks)
    assert closed == [True]
    assert all(s.closed for _, s in sources)


async def test_a_failing_source_raises_its_own_error_and_leaves_no_zip() -> None:
    failing = Source([os.urandom(CHUNK) for _ in range(20)], fail_after=10)
    after = Source([b"never read"])
    sources = [("data/ok.csv", Source([b"a\n"])), ("data/x.bin", failing), ("data/y.csv", after)]
    closed: list[bool] = []
    out: list[bytes] = []
    with pytest.raises(OSError, match="the store went away"):
        async for chunk in zip_stream(listed(sources, closed), chunk_size=CHUNK):
            out.append(chunk)
    body = b"".join(out)
    assert b"PK\x05\x06" not in body  # no end of central directory: not a readable ZIP
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(body))
    assert failing.closed and closed == [True]
    assert after.given == 0


DEFLATE = _zip._deflate_level_1


class Held:
    """A deflate that waits until it is let go: the zip thread stays on one chunk."""

    def __init__(self, gate: threading.Event, entered: threading.Event | None = None) -> None:
        self.gate = gate
        self.entered = threading.Event() if entered is None else entered
        self.inner = DEFLATE()

    def compress(self, data: bytes) -> bytes:
        self.entered.set()
        self.gate.wait(10)
        return bytes(self.inner.compress(data))

    def flush(self) -> bytes:
        return bytes(self.inner.flush())


async def test_the_loop_reads_a_bounded_lead_over_a_busy_zip_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = threading.Event()
    monkeypatch.setattr(_zip, "_deflate_level_1", lambda: Held(gate))
    big = Source([os.urandom(CHUNK) for _ in range(200)])  # 12.5 MiB
    closed: list[bool] = []
    chunks = zip_stream(listed([("data/big.bin", big)], closed), chunk_size=CHUNK)
    assert await anext(chunks)  # the member's header: stream-zip hands it out alone
    data = asyncio.ensure_future(anext(chunks))  # the reader waits: the feeder may read
    await big.reached(AHEAD_BYTES)
    await asyncio.sleep(0.2)  # time to read on, if anything let it
    # The queue's bytes (the last chunk let in below the bound may pass it), the chunk the zip
    # thread holds and the one the feeder waits to put.
    assert AHEAD_BYTES <= big.given <= AHEAD_BYTES + 3 * CHUNK, big.given
    gate.set()
    assert await data
    await chunks.aclose()
    assert big.closed and closed == [True]


async def test_the_sources_are_read_only_while_the_reader_waits_for_a_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the reader holds a chunk (a client's network) nothing is read, and the reading
    rests (the export's place in the budget goes back); it goes on when the reader asks again."""
    # Room for every chunk: only the turn stops the feeder.
    monkeypatch.setattr(_zip, "AHEAD_BYTES", 64 * 1024 * 1024)
    # Incompressible chunks (an output chunk needs about as many bytes in), read more slowly
    # than they are deflated.
    big = Source([os.urandom(CHUNK) for _ in range(200)], delay=0.002)
    closed: list[bool] = []
    rests: list[int] = []
    chunks = zip_stream(
        listed([("data/big.bin", big)], closed), chunk_size=CHUNK, rest=lambda: rests.append(1)
    )
    assert await anext(chunks)
    await asyncio.sleep(0.3)  # the reader holds its chunk
    lead = big.given
    assert rests
    await asyncio.sleep(0.3)
    assert big.given == lead < len(big.chunks) * CHUNK
    rested = len(rests)
    assert await anext(chunks)
    assert await anext(chunks)
    assert big.given > lead
    await asyncio.sleep(0.3)
    assert len(rests) > rested
    await chunks.aclose()
    assert big.closed and closed == [True]


async def test_a_reader_that_leaves_early_closes_the_sources() -> None:
    big = Source([os.urandom(CHUNK) for _ in range(100)])
    closed: list[bool] = []
    chunks = zip_stream(listed([("data/big.bin", big), ("b", Source([b"x"]))], closed), CHUNK)
    await anext(chunks)
    await chunks.aclose()
    assert big.closed and closed == [True]
    assert big.given < len(big.chunks) * CHUNK


async def test_a_cancelled_reader_closes_the_sources() -> None:
    started = asyncio.Event()

    class Stalled(Source):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                yield b"first"
                started.set()
                await asyncio.Event().wait()  # a COPY that never sends again
                yield b"never"
            finally:
                self.closed = True

    stalled = Stalled([])
    closed: list[bool] = []
    reader = asyncio.ensure_future(read_all(zip_stream(listed([("s", stalled)], closed), CHUNK)))
    await started.wait()
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert stalled.closed and closed == [True]


async def test_a_cancelled_reader_stops_the_source_at_once_even_while_the_zip_thread_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client gone while its bundle waits at a pace point: the source is left at once (the
    download then ends its pacer), not once the zip thread is done with its chunk."""
    gate, deflating = threading.Event(), threading.Event()
    monkeypatch.setattr(_zip, "_deflate_level_1", lambda: Held(gate, deflating))
    at_pace_point = asyncio.Event()
    left: list[str] = []

    async def source() -> AsyncIterator[bytes]:
        try:
            yield b"x" * CHUNK
            at_pace_point.set()
            await asyncio.Event().wait()  # waiting for a place in the export budget
            yield b"never"
        except asyncio.CancelledError:
            left.append("cancelled")
            raise

    async def members() -> AsyncIterator[Member]:
        yield member("data/x.csv", AT, source())

    # Output chunks larger than the input: the reader waits on the zip thread's first one.
    reader = asyncio.ensure_future(read_all(zip_stream(members(), 16 * CHUNK)))
    await at_pace_point.wait()
    assert await asyncio.to_thread(deflating.wait, 10)  # the zip thread holds the first chunk
    reader.cancel()
    await asyncio.sleep(0.2)
    try:
        assert left == ["cancelled"]  # while the zip thread still deflates
    finally:
        gate.set()
    with pytest.raises(asyncio.CancelledError):
        await reader


async def test_a_failing_source_s_own_error_wins_over_one_in_closing() -> None:
    async def members() -> AsyncIterator[Member]:
        try:
            yield member("a", AT, Source([b"a"]))
            yield member("b", AT, Source([b"b", b"c"], fail_after=1))
        finally:
            raise RuntimeError("the snapshot's rollback failed too")

    with pytest.raises(OSError, match="the store went away"):
        await read_all(zip_stream(members(), CHUNK))
