"""How uvicorn runs the app: one configuration for `dsar serve` and the tests' live server.

uvicorn bounds an idle keep-alive connection (`timeout_keep_alive`) but not the time a client
takes to send a request's headers: a connection that sends one byte a second, or nothing at
all, was held for ever. `GuardedHttpTools` gives every request `header_timeout` seconds from
the moment the connection opens, or the previous response ended, to the end of its headers;
past that it answers 408 and closes. The body has its own bound, in `api.middleware`, where
the request is known (RFC 9110 §15.5.9: 408 Request Timeout, with `Connection: close`).
"""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class Server(uvicorn.Server):
    """uvicorn on sockets already held; once the app has started, what starting made is frozen
    (`freeze_startup`) and the banner, if any, printed."""

    def __init__(self, config: uvicorn.Config, banner: str = "") -> None:
        super().__init__(config)
        self.banner = banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        freeze_startup()
        if self.banner:
            print(self.banner, flush=True)


def freeze_startup() -> None:
    """Once the app has started: what starting made (the imported modules, the GraphQL
    schema, the catalogue: about 120,000 objects, nearly all a full collection walks) lives as
    long as the process, so it is moved out of the cyclic collector's reach (`gc.freeze`).

    Without it, each full collection walked them all: 80 to 170 ms with the event loop
    stopped, every 8 to 10 s while exports ran, and every request in flight waited it out
    (scenario 7 of the benchmark: they set the small queries' p99). What is made later is
    collected as before; `/metrics` shows how many are frozen (api/metrics.py)."""
    gc.collect()  # garbage of the start is freed, not kept for good
    gc.freeze()


# Seconds between a connection going idle and uvicorn closing it.
KEEP_ALIVE = 5
_BODY = b'{"error": "request_timeout"}'
TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n"
    b"connection: close\r\n"
    b"\r\n" + _BODY
)


class GuardedHttpTools(HttpToolsProtocol):
    """httptools with a deadline for each request's headers (`header_timeout` seconds)."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows the base's type the same way
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers, on the same connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            # No response of ours is on the wire: the 408 cannot interleave with one.
            self.transport.write(TIMEOUT_408)
        self.transport.close()


def guarded(header_timeout: float) -> type[GuardedHttpTools]:
    """The protocol class with this deadline (uvicorn makes one instance per connection)."""
    return type("GuardedHttpTools", (GuardedHttpTools,), {"header_timeout": header_timeout})


def config(app: ASGIApp, *, header_timeout: float, grace: int, **extra: Any) -> uvicorn.Config:
    """uvicorn as dsar runs it: uvloop, httptools with the header deadline, idle keep-alive
    connections closed after `KEEP_ALIVE` seconds, our own JSON log lines only."""
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http=guarded(header_timeout),
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=grace,
        **extra,
    )
