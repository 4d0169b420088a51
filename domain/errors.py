"""What can go wrong in the rules, as data; the edges decide what each one looks like."""

from __future__ import annotations

import asyncpg

# Failures of a backing store are the service being unavailable, not the request being bad.
STORE_FAILURES = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
    ConnectionError,
    TimeoutError,
    OSError,
)
