"""The paced load's own HTTP/1.1 client (bench/paced.py), against a real server on a socket:
keep-alive answers with a length or chunked, connections the server closes (saying so, or not),
and what counts as a failure (a status other than 200, a body that starts with errors)."""

from __future__ import annotations

import asyncio
import itertools

from bench.paced import run

ANSWERS = [
    b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{"data":{}}',
    b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"da\r\n7\r\nta":{}}\r\n0\r\n\r\n',
    b'HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{"errors":[]}',
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}",
    b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{"data":{}}',
    # Kept by the client, closed by the server without a word (as a keep-alive time-out does):
    # the next request on it is sent again on a new connection.
    b'HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n{"data":{} }',
    # An answer cut short, the connection closed: a failure, never sent again.
    b'HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{"data"',
]
SILENT = len(ANSWERS) - 2
FAILED = (2, 3, 6)  # the body of errors, the 503 and the answer cut short


async def test_the_paced_client_counts_answers_and_failures_over_kept_connections() -> None:
    turn = itertools.count()
    requests: list[bytes] = []
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                requests.append(head + await reader.readexactly(length))
                n = next(turn) % len(ANSWERS)
                answer = ANSWERS[n]
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer or n >= SILENT:
                    break
        except asyncio.IncompleteReadError:
            pass  # the client closed a kept connection
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await run(f"http://127.0.0.1:{port}/graphql", b'{"query":"{me}"}', "t", 50, 1.0)
    sent = len(requests)
    assert result["requests"] == sent >= 40
    assert result["errors"] == sum(1 for n in range(sent) if n % len(ANSWERS) in FAILED)
    assert result["p99_ms"] >= result["p50_ms"] > 0
    assert requests[0].startswith(b"POST /graphql HTTP/1.1\r\n")
    assert b"Authorization: Bearer t\r\n" in requests[0]
    assert requests[0].endswith(b'\r\n\r\n{"query":"{me}"}')
    # One request at a time each: connections are kept, and only the closed ones are replaced.
    assert connections <= 3 * (sent // len(ANSWERS)) + 4
