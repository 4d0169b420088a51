"""An open-loop load at a fixed rate, for scenario 7's small queries.

wrk keeps its connections busy, so the server is always saturated and its p99 is mostly
queueing. Here request i is due at start + i / rate whatever happened before, and its latency is
counted from that moment (no coordinated omission): a server that stalls shows it in full.
Failed requests (not 200, or a body with errors first) are counted apart, not in the latencies.
Runs in its own process, so the benchmark's own work (COPYs, downloads) cannot delay it.

    BENCH_TOKEN=... python -m bench.paced --url http://127.0.0.1:8000/graphql \\
        --body body.json --rate 30 --seconds 600      # stops early on SIGINT, then reports
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import uvloop

MAX_IN_FLIGHT = 256
TIMEOUT = 60.0


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of `values`."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


class _Stale(Exception):
    """A kept connection the server had closed before this request: no byte of an answer."""


class _Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time. A small client on asyncio
    streams rather than httpx: httpx took about 4 ms of CPU a request here, so at scenario 7's
    rate the load's own process needed most of a core, and on a machine of two cores busy with
    exports it fell behind its own schedule (its lateness counted as the server's)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.open = True

    async def post(self, request: bytes) -> tuple[int, bytes]:
        """(status, body); `_Stale` when the connection ended before any byte of an answer,
        a `ConnectionError` when it ended in the middle of one."""
        reader = self.reader
        try:
            self.writer.write(request)
            first = await reader.readline()
        except (OSError, RuntimeError) as exc:  # uvloop refuses a write on a closed transport
            raise _Stale from exc
        if not first:
            raise _Stale
        status = int(first.split()[1])
        length = None
        chunked = False
        while (line := await reader.readline()) not in (b"\r\n", b"\n"):
            if not line:
                raise ConnectionError("the connection ended within the headers")
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection" and b"close" in value.lower():
                self.open = False
        if chunked:
            parts = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return status, b"".join(parts)
        if length is None:
            self.open = False
            return status, await reader.read()
        return status, await reader.readexactly(length)

    def close(self) -> None:
        self.open = False
        self.writer.close()


async def run(url: str, body: bytes, token: str, rate: float, seconds: float) -> dict[str, float]:
    u = urlsplit(url)
    if u.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("load is only ever sent to this machine")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    request = (
        f"POST {target} HTTP/1.1\r\nHost: {u.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: list[_Connection] = []

    async def send() -> tuple[int, bytes]:
        """The request on a kept connection, or on a new one. A kept connection the server has
        closed meanwhile (its keep-alive ran out) ends before any byte of an answer: the request
        goes again on another. A connection that ends later, or a new one that fails, fails the
        request."""
        while idle:
            conn = idle.pop()
            try:
                answer = await conn.post(request)
            except _Stale:
                conn.close()
                continue
            except BaseException:
                conn.close()
                raise
            _keep(conn)
            return answer
        conn = _Connection(*await asyncio.open_connection(u.hostname, u.port or 80))
        try:
            answer = await conn.post(request)
        except BaseException:
            conn.close()
            raise
        _keep(conn)
        return answer

    def _keep(conn: _Connection) -> None:
        if conn.open:
            idle.append(conn)
        else:
            conn.close()

    async def one(due: float) -> None:
        nonlocal errors
        ok = False
        async with slots:
            try:
                async with asyncio.timeout(TIMEOUT):
                    status, answer = await send()
                # An answer is data first: a 200 whose body starts with errors (a timed-out
                # resolver), or holds nothing, is a failure too.
                ok = status == 200 and answer.startswith(b'{"data"')
            except (OSError, EOFError, TimeoutError, ValueError, IndexError, _Stale):
                pass  # EOFError: asyncio's IncompleteReadError, a body cut short
        if ok:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1

    start = time.perf_counter()
    tasks = []
    i = 0
    while not stop.is_set() and time.perf_counter() - start < seconds:
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            try:
                await asyncio.wait_for(stop.wait(), wait)
                break
            except TimeoutError:
                pass
        tasks.append(asyncio.create_task(one(due)))
        i += 1
    elapsed = time.perf_counter() - start
    await asyncio.gather(*tasks)
    for conn in idle:
        with contextlib.suppress(OSError):
            conn.close()
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms) + errors,
        "seconds": elapsed,
        "rate": (len(ms) + errors) / elapsed if elapsed else 0.0,
        "errors": errors,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms, default=0.0),
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.paced", description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--body", required=True, type=Path)
    p.add_argument("--rate", required=True, type=float)
    p.add_argument("--seconds", type=float, default=600)
    args = p.parse_args()
    result = uvloop.run(
        run(args.url, args.body.read_bytes(), os.environ["BENCH_TOKEN"], args.rate, args.seconds)
    )
    print("PACEDJSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
