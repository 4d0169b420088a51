"""The fresh-machine path: the embedded PostgreSQL starts from nothing and answers a query."""

from pathlib import Path

import asyncpg

from stores.embedded import start_embedded


async def test_embedded_postgres_starts_and_answers(tmp_path: Path) -> None:
    uri, server = start_embedded(tmp_path / "pg", cleanup_mode="delete")
    try:
        conn = await asyncpg.connect(uri)
        try:
            version = await conn.fetchval("SHOW server_version_num")
            assert int(version) >= 150000
            assert await conn.fetchval("SELECT 40 + 2") == 42
        finally:
            await conn.close()
    finally:
        server.cleanup()
    assert not (tmp_path / "pg").exists()
