from pathlib import Path

import asyncpg
import pytest

from stores.config import with_database
from stores.deployment import Deployment, migrate
from stores.migrate import MigrationError, apply, ensure_database, migrations_for


async def test_migrating_twice_changes_nothing(deployment: Deployment) -> None:
    again = await migrate(deployment)
    assert again == {"service": [], "app": [], "billing": [], "analytics": [], "crm": []}


async def tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_each_store_database_has_its_own_tables(deployment: Deployment) -> None:
    by_set = {s.migrations: s.dsn for s in deployment.stores.stores if s.migrations}
    # The demo company's own shapes, one system a database; dsar's own tables only in its own.
    assert {"users", "addresses", "user_settings", "identity_documents"} <= await tables(
        by_set["app"]
    )
    assert "bank_accounts" in await tables(by_set["billing"])
    assert "bank_accounts" not in await tables(by_set["app"])
    assert {"identifies", "page_events", "devices", "geo_lookups"} <= await tables(
        by_set["analytics"]
    )
    if deployment.stores.store("crm").kind == "postgres":
        assert {"contacts", "messages"} <= await tables(by_set["crm"])
    assert "identity_links" not in await tables(by_set["app"])
    assert {"exports", "audit_log", "subjects", "identity_links"} <= await tables(
        deployment.service_dsn
    )


async def test_a_failed_migration_leaves_the_database_as_it_was(
    tmp_path: Path, pg_server: str, prefix: str
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text("CREATE TABLE kept (id int);")
    (folder / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT 1 / 0;")
    dsn = with_database(pg_server, prefix + "_broken")
    await ensure_database(pg_server, prefix + "_broken")
    with pytest.raises(MigrationError) as info:
        await apply(dsn, migrations_for("x", folder))
    assert str(info.value) == "0002_bad.sql: failed with SQLSTATE 22012"
    present = await tables(dsn)
    assert "kept" in present
    assert "half" not in present
    # Fixing the file and running again applies only what is missing.
    (folder / "0002_bad.sql").write_text("CREATE TABLE half (id int);")
    assert await apply(dsn, migrations_for("x", folder)) == ["0002_bad.sql"]


async def test_an_applied_migration_that_changed_is_refused(
    tmp_path: Path, pg_server: str, prefix: str
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "0001_a.sql").write_text("CREATE TABLE a (id int);")
    await ensure_database(pg_server, prefix + "_changed")
    dsn = with_database(pg_server, prefix + "_changed")
    await apply(dsn, migrations_for("x", folder))
    (folder / "0001_a.sql").write_text("CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match=r"0001_a\.sql: changed after it was applied"):
        await apply(dsn, migrations_for("x", folder))
