"""A real MySQL / MariaDB for the tests: TEST_MYSQL_URL, else 127.0.0.1:3306 if it answers."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import unquote, urlsplit

import asyncmy

LOCAL = "mysql://root@127.0.0.1:3306"


def _params(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "connect_timeout": 2,
    }


async def _run(url: str, sql: str | None) -> bool:
    try:
        conn = await asyncmy.connect(**_params(url))
    except (OSError, asyncmy.errors.Error):
        return False
    try:
        if sql is not None:
            async with conn.cursor() as cur:
                await cur.execute(sql)
    finally:
        conn.close()
    return True


def mysql_test_server() -> str | None:
    url = os.environ.get("TEST_MYSQL_URL") or LOCAL
    return url if asyncio.run(_run(url, None)) else None


def drop_mysql_database(url: str, name: str) -> None:
    asyncio.run(_run(url, f"DROP DATABASE IF EXISTS `{name}`"))
