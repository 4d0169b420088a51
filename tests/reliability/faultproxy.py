"""A small asyncio TCP fault proxy (toxiproxy is not available here) between dsar and PostgreSQL.

One listener on 127.0.0.1 forwards every connection to one upstream (host and port, or a unix
socket path). Faults apply at once to open connections and to new ones:

- `pass()`: bytes flow untouched;
- `latency(seconds)`: every chunk, both ways, waits `seconds` before it is forwarded;
- `black_hole()`: nothing flows and new connections get no answer, as in a network partition;
  bytes are held, not dropped (TCP retransmits them), and flow again on `pass()`;
- `refuse()`: new connections are reset at once, as by a server that is down;
- `reset_all()`: every open connection is reset (RST) now, as when the server restarts;
- `garble_next_reply()`: the 4th byte of the next chunk from upstream is changed (for MySQL, the
  sequence number of the reply's first packet): a client whose protocol fell out of step.

Run it by hand: `python -m tests.reliability.faultproxy UPSTREAM_HOST:PORT` (prints its port).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client side, the upstream side, the two pumps."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    def __init__(self, upstream: tuple[str, int] | str, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._delay = 0.0
        self._refusing = False
        self._garble = False

    # Faults --------------------------------------------------------------------------------

    def pass_(self) -> None:
        self._delay, self._refusing = 0.0, False
        self._flowing.set()

    def latency(self, seconds: float) -> None:
        self._delay, self._refusing = seconds, False
        self._flowing.set()

    def black_hole(self) -> None:
        self._refusing = False
        self._flowing.clear()

    def refuse(self) -> None:
        self._refusing = True

    def garble_next_reply(self) -> None:
        self._garble = True

    def reset_all(self) -> int:
        """Resets every open connection; returns how many there were."""
        links = list(self._links)
        for link in links:
            self._drop(link)
        return len(links)

    @property
    def open_connections(self) -> int:
        return len(self._links)

    # Life ----------------------------------------------------------------------------------

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.reset_all()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def dsn(self, dsn: str) -> str:
        """`dsn` with its host and port replaced by this proxy's (a unix-socket `host=` too)."""
        parts = urlsplit(dsn)
        user = parts.netloc.rpartition("@")[0]
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")]
        netloc = f"{user}@{self.host}:{self.port}" if user else f"{self.host}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))

    # Plumbing ------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        if self._refusing:
            self._drop(link)
            return
        self._links.add(link)
        try:
            # A partitioned network does not answer a new connection either.
            await self._flowing.wait()
            if isinstance(self.upstream, str):
                up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._drop(link)
            return
        link.upstream = up_writer
        if link not in self._links:  # reset while connecting
            self._drop(link)
            return
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link, replies=True)),
        ]

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        replies: bool = False,
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if self._delay:
                    await asyncio.sleep(self._delay)
                    await self._flowing.wait()
                if replies and self._garble and len(data) > 3:
                    self._garble = False
                    data = data[:3] + bytes([data[3] ^ 0x40]) + data[4:]
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # One side closed: close both, as a TCP proxy does.
            if link in self._links:
                self._close(link)

    def _close(self, link: _Link) -> None:
        self._links.discard(link)
        for w in (link.client, link.upstream):
            if w is not None and not w.is_closing():
                w.close()
        self._cancel(link)

    def _drop(self, link: _Link) -> None:
        """Closes both sides with RST (SO_LINGER 0), not a polite FIN."""
        self._links.discard(link)
        for w in (link.client, link.upstream):
            if w is None or w.is_closing():
                continue
            sock = w.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
        self._cancel(link)

    @staticmethod
    def _cancel(link: _Link) -> None:
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()


async def _main(target: str) -> None:
    host, _, port = target.rpartition(":")
    async with FaultProxy((host or "127.0.0.1", int(port))) as proxy:
        print(f"forwarding 127.0.0.1:{proxy.port} -> {target}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(sys.argv[1]))
