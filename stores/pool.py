"""asyncpg pools with orjson as the JSON codec, shared by the service database and the stores.

Every wait is bounded, so a database that stalls turns into quick 503s, never a queue that grows
without end: a free connection is waited for `acquire_timeout` seconds (asyncpg waits forever by
default), a new connection `CONNECT_TIMEOUT` seconds, and a statement `statement_timeout` on the
server plus `COMMAND_GRACE` on the client (a black-holed network never answers the server's error).

`statement_timeout` and `application_name` may be set per database in its DSN
(`postgresql://…/accounts?statement_timeout=5000`, milliseconds); the defaults are below.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import orjson

from stores.tracing import statement_span, tracing_on

ACQUIRE_TIMEOUT = 2.0
# An export's snapshot waits longer for a connection: the export was admitted only when a turn
# was free (domain/turns.py), so a connection comes free soon, and failing now would cut off a
# response whose headers are gone.
SNAPSHOT_ACQUIRE_TIMEOUT = 15.0
# Connections of a PostgreSQL store kept for exports' snapshots, in a pool of their own beside
# the one that serves queries: an export holds its connection for as long as it streams (the
# longer when it gives way to small requests, domain/budget.py), and a query must never wait
# for one of those. Made as exports need them; two for each of the exports' turns
# (domain/turns.py): the snapshot, and the one beside it that reads the bundle's web pages while
# its data file streams (stores/streams.py, `Snapshot.beside`).
SNAPSHOTS = 6
# What the kernel may hold of an export's COPY that dsar has not read yet, on a TCP connection.
# An export that gives way to small requests stops reading its COPY so that its backend stops
# too (domain/budget.py). Linux grows a socket's receive buffer up to `net.ipv4.tcp_rmem`'s
# maximum (32 MB on the benchmark's machine, 6 MB by default): in CI a paused data file of 23 MB
# was written whole into it, the backend's CPU spent while the export was meant to wait. Linux
# keeps twice the size asked, at most twice `net.core.rmem_max` (4 MB here, 212992 bytes by
# default): 2 MB, 15 ms of the COPY's CSV (136 MB/s here), and the COPY keeps its full speed
# from a database up to 15 ms away (2 MB a round trip); 416 kB and 3 ms under the default.
EXPORT_RECEIVE_BUFFER = 1024 * 1024
PING_BUDGET = 1.0
CONNECT_TIMEOUT = 5.0
COMMAND_GRACE = 2.0
DEFAULT_SERVER_SETTINGS = {"statement_timeout": "30000", "application_name": "dsar"}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")
    if tracing_on():  # a span per statement; untraced, asyncpg's faster path stays
        conn.add_query_logger(statement_span)


async def _init_export(conn: asyncpg.Connection) -> None:
    await _init(conn)
    bound_receive_buffer(conn._transport)  # type: ignore[attr-defined]  # asyncpg's own transport


def bound_receive_buffer(transport: Any, size: int = EXPORT_RECEIVE_BUFFER) -> None:
    """Fixes a database connection's receive buffer at `size` bytes, where it is a TCP socket
    (a Unix socket's sender bounds what waits in it). Linux no longer grows a buffer set so."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


class PooledConnection(asyncpg.Connection):
    """An asyncpg connection that knows when it may have left an exchange open.

    asyncpg prepares a statement with Parse, Describe and Flush, and ends the exchange (Sync)
    only with the Bind and Execute that follow. When those are never sent (an argument that
    does not encode, asyncpg's DataError; a cancellation that lands as the prepare returns; a
    statement prepared and not run), the server stays mid-exchange with its statement timer
    running, on a connection that looks idle. Once it had sat in the pool for
    `statement_timeout`, the server cancelled the open exchange, and the next statement sent on
    it, anyone's, failed at once with "canceling statement due to statement timeout" (a CI
    failure; tests/stores/test_pool_release.py). `exchange_open` is set by every prepare and
    cleared by every statement that runs to its end; `close_exchange` closes what is left.
    """

    __slots__ = ("exchange_open",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchange_open = False

    async def _get_statement(self, *args: Any, **kwargs: Any) -> Any:
        self.exchange_open = True  # set before: a prepare cut short may leave it open too
        return await super()._get_statement(*args, **kwargs)  # type: ignore[misc]  # asyncpg's own

    async def _do_execute(self, *args: Any, **kwargs: Any) -> Any:
        result = await super()._do_execute(*args, **kwargs)  # type: ignore[misc]  # asyncpg's own
        self.exchange_open = False  # its Bind, Execute and Sync were answered
        return result

    async def _executemany(self, *args: Any, **kwargs: Any) -> Any:
        result = await super()._executemany(*args, **kwargs)  # type: ignore[misc]  # asyncpg's own
        self.exchange_open = True  # an empty batch sends no Bind and no Sync after its Parse
        return result

    async def close_exchange(self) -> None:
        """Ends the exchange this connection may have left open: one statement, whose Sync
        closes it; the error the server may have queued for that exchange is raised there and
        dropped. Nothing when none may be open."""
        if self.exchange_open:
            with suppress(asyncpg.PostgresError):
                await self.fetchval("SELECT 1")
            self.exchange_open = False


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset query on release (`RESET ALL`, `UNLISTEN *`, unlocking advisory
    locks: one round trip each time a connection goes back, several per GraphQL request).

    Nothing here leaves session state on a pooled connection: settings are fixed at connect
    (`server_settings`), exports use `SET LOCAL` and transaction-scoped locks, and the session
    locks of `domain.leases` and the migrations live on connections of their own. asyncpg still
    ends any open transaction before calling this.

    A connection that may have left an exchange open ends it
    (`PooledConnection.close_exchange`).
    """
    if isinstance(conn, PooledConnection):
        await conn.close_exchange()


class BoundedPool(asyncpg.Pool):
    """An asyncpg pool whose `acquire()` (and so `fetch()`, `execute()`…) waits a bounded time."""

    acquire_timeout: float = ACQUIRE_TIMEOUT

    def acquire(self, *, timeout: float | None = None) -> asyncpg.pool.PoolAcquireContext:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)

    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109  # asyncpg's signature, overridden
        # A live connection free now is taken without the bound on the wait: that bound (an
        # asyncio timeout, its timer scheduled and cancelled on every statement) only matters
        # when there is a wait, and here there is none: the queue hands over a live connection
        # first (asyncpg's holder queue), without connecting, so nothing is awaited. Its
        # release keeps the bound (the holder's timeout, as asyncpg records it).
        if timeout is None or not _live_one_free(self):
            return await super()._acquire(timeout)  # type: ignore[misc]  # asyncpg's own
        proxy = await super()._acquire(None)  # type: ignore[misc]  # asyncpg's own
        proxy._holder._timeout = timeout
        return proxy

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109  # asyncpg's signature, overridden
        # A connection that comes back as it was lent (no transaction, no cancellation under
        # way, nothing listening, not due to be replaced) goes back to the queue at once:
        # asyncpg would run its release in a task of its own (`asyncio.shield`) under a timeout
        # for a reset that is `_keep_session`, nothing; 30 to 80 us of the server's CPU a
        # statement here, several statements a request. What that release would do besides is
        # done here in the same order, without a wait, so nothing can cancel it half done.
        # Anything else takes asyncpg's own way.
        holder = getattr(connection, "_holder", None)
        con = getattr(connection, "_con", None)
        if (
            holder is None
            or con is None
            or holder._pool is not self
            or self._reset is not _keep_session
            or con.is_closed()
            or con.is_in_transaction()
            or con._top_xact is not None
            or con._protocol._is_cancelling()
            or con._protocol.queries_count >= holder._max_queries
            or holder._generation != self._generation
            or con._listeners
            or con._log_listeners
            or getattr(con, "exchange_open", False)
        ):
            return await super().release(connection, timeout=timeout)
        self._check_init()
        con._on_release()
        holder._timeout = None
        waiting = bool(self._queue._getters)  # asyncio.Queue's own waiters
        holder._release()  # into the queue of free connections, waking the first who waits
        holder._setup_inactive_callback()
        if waiting:
            # Let the one woken take it: a releaser that asks again at once (several
            # statements a request) would otherwise find it free and go first, again and again.
            await asyncio.sleep(0)


def _live_one_free(pool: asyncpg.Pool) -> bool:
    """Whether the holder asyncpg's queue hands over next (the last live one) is lent without
    a wait: not one whose connection `expire_connections()` made stale, which it reconnects."""
    holders = pool._queue._queue  # type: ignore[attr-defined]  # asyncpg's own holder queue
    for holder in reversed(holders):
        if holder.is_connected():
            return bool(holder._generation == pool._generation)  # type: ignore[attr-defined]  # asyncpg's own
    return False


async def ping(pool: asyncpg.Pool, budget: float = PING_BUDGET) -> bool:
    """True when the database answers within `budget` seconds, all waits included.

    Half for the query, half for giving the connection back: asyncpg's release waits as long
    as the acquire did, to reset a connection whose query was cut short.
    """
    try:
        async with pool.acquire(timeout=budget / 2) as conn:
            return bool(await conn.fetchval("SELECT true", timeout=budget / 2))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


def server_settings(dsn: str) -> dict[str, str]:
    """The defaults, overridden by the same names in the DSN's query (asyncpg does the reverse)."""
    query = dict(parse_qsl(urlsplit(dsn).query))
    settings = {k: query.get(k, v) for k, v in DEFAULT_SERVER_SETTINGS.items()}
    if not settings["statement_timeout"].isdigit() or int(settings["statement_timeout"]) <= 0:
        raise ValueError("statement_timeout in a database URL must be a positive number of ms")
    return settings


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float = ACQUIRE_TIMEOUT,
    read_only: bool = False,
    exports: bool = False,
) -> asyncpg.Pool:
    """`read_only`: every transaction of the pool is read only (the company's stores: dsar
    reads them and never writes, whatever a bug or a stores file might ask), in UTC.
    `exports`: its connections stream exports' COPYs (`EXPORT_RECEIVE_BUFFER`)."""
    settings = server_settings(dsn)
    if read_only:
        settings["default_transaction_read_only"] = "on"
        # A company's times read as exports read them (stores.streams SNAPSHOT_SETTINGS): a
        # `timestamp without time zone` is the same instant in a page as in the bundle,
        # whatever TimeZone the database (or its URL) has.
        settings["TimeZone"] = "UTC"
        settings["DateStyle"] = "ISO, YMD"
    pool = BoundedPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_export if exports else _init,
        reset=_keep_session,
        loop=None,
        connection_class=PooledConnection,
        record_class=asyncpg.Record,
        timeout=CONNECT_TIMEOUT,
        command_timeout=int(settings["statement_timeout"]) / 1000 + COMMAND_GRACE,
        server_settings=settings,
    )
    pool.acquire_timeout = acquire_timeout
    # A pool that cannot connect fails at start-up.
    return await pool
