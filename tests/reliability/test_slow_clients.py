"""Slow and silent clients (issue 22, item 2): headers and bodies have deadlines, a request
holds one of the 64 places of requests served at once only once its body has arrived, a form
from no session is refused before its body is read, and a client that hangs up mid-body is
counted as the client's doing (499), not a 500."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from urllib.parse import urlsplit

import httpx

from tests.reliability._client import ask_and_judge
from tests.reliability.conftest import Population, ServerFactory

ATTACKERS = 80
ATTACK_SECONDS = 20.0


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def closed_after(reader: asyncio.StreamReader, within: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before."""
    started = time.monotonic()
    got = b""
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(within):
            while chunk := await reader.read(4096):
                got += chunk
    return time.monotonic() - started, got


async def trickle_body(url: str, stop: asyncio.Event, sent: list[int]) -> None:
    """An unauthenticated form POST whose body comes one byte a second, for as long as the
    attack lasts (reconnecting when the server closes the connection)."""
    host = urlsplit(url).netloc
    while not stop.is_set():
        try:
            reader, writer = await connect(url)
            writer.write(
                f"POST /account/exports HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 100000\r\n\r\n".encode()
            )
            while not stop.is_set() and not reader.at_eof():
                writer.write(b"a")
                await writer.drain()
                sent[0] += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await stop.wait()
            writer.close()
        except ConnectionError:
            await asyncio.sleep(0.2)


async def test_slow_bodies_leave_a_persons_query_an_answer(
    start_server: ServerFactory, population: Population
) -> None:
    """80 unauthenticated POSTs sending their bodies one byte a second for 20 s: every `me`
    query of a person in the meantime answers with their data, within 2 s."""
    server = await start_server()
    subject = population.subjects[0]
    stop = asyncio.Event()
    sent = [0]
    attackers = [
        asyncio.create_task(trickle_body(server.url, stop, sent)) for _ in range(ATTACKERS)
    ]
    took: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await asyncio.sleep(2.0)  # every attacker connected and trickling
            ends = time.monotonic() + ATTACK_SECONDS - 2.0
            while time.monotonic() < ends:
                verdict, seconds = await ask_and_judge(client, population, subject)
                assert verdict.violation is None, verdict.violation
                assert verdict.outcome == "ok", (verdict, seconds)
                took.append(seconds)
                await asyncio.sleep(0.25)
            metrics = (await client.get("/metrics")).text
    finally:
        stop.set()
        await asyncio.gather(*attackers)
    print(
        f"\n{ATTACKERS} slow bodies for {ATTACK_SECONDS:.0f} s ({sent[0]} bytes sent): "
        f"{len(took)} `me` queries, median {statistics.median(took) * 1000:.0f} ms, "
        f"slowest {max(took) * 1000:.0f} ms"
    )
    assert max(took) < 2.0, took
    assert 'status="500"' not in metrics and 'status="503"' not in metrics


async def test_a_header_sent_one_byte_a_second_is_closed_with_408(
    start_server: ServerFactory,
) -> None:
    """With the default deadline (DSAR_HEADER_TIMEOUT, 10 s): well within 60 s."""
    server = await start_server()
    reader, writer = await connect(server.url)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")

    async def drip() -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                await asyncio.sleep(1.0)
                writer.write(b"a")
                await writer.drain()

    dripping = asyncio.create_task(drip())
    seconds, got = await closed_after(reader, within=60)
    dripping.cancel()
    writer.close()
    print(f"\nheader at 1 byte/s: 408 and closed after {seconds:.1f} s")
    assert got.startswith(b"HTTP/1.1 408 "), got[:100]
    assert 9 <= seconds < 15  # the 10 s default, not some other cause


async def test_silent_idle_and_slow_body_connections_are_bounded(
    start_server: ServerFactory, population: Population
) -> None:
    server = await start_server(env={"DSAR_HEADER_TIMEOUT": "2", "DSAR_BODY_TIMEOUT": "2"})
    # A connection that never sends a byte.
    reader, writer = await connect(server.url)
    seconds, got = await closed_after(reader, within=10)
    writer.close()
    assert got.startswith(b"HTTP/1.1 408 ") and 1.5 <= seconds < 5, (seconds, got[:60])
    # An idle keep-alive connection after a response: closed within uvicorn's 5 s.
    reader, writer = await connect(server.url)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    seconds, got = await closed_after(reader, within=10)
    writer.close()
    assert got.startswith(b"HTTP/1.1 200 ") and seconds < 6, (seconds, got[:60])
    # An authenticated query whose body trickles: 408 at the body deadline, then closed.
    token = population.subjects[0].token
    reader, writer = await connect(server.url)
    writer.write(
        f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
    )
    seconds, got = await closed_after(reader, within=10)
    writer.close()
    assert got.startswith(b"HTTP/1.1 408 ") and b"connection: close" in got.lower()
    assert 1.5 <= seconds < 5, seconds
    # A form from no session is refused before its body is read: the answer comes at once.
    reader, writer = await connect(server.url)
    writer.write(
        b"POST /account/exports HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    )
    async with asyncio.timeout(1.5):
        head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 403 "), head[:60]
    # A client that hangs up half way through its body: counted 499, never a 500.
    reader, writer = await connect(server.url)
    writer.write(
        f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
    )
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=server.url) as client:
        metrics = (await client.get("/metrics")).text
    assert 'route="/graphql",status="499"' in metrics
    assert 'status="500"' not in metrics
