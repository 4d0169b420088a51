"""`dsar stores check` and `dsar stores draft` against the demo company's real databases.

Fixtures live here: each test builds its own copy of the company (four PostgreSQL databases,
the CRM on MariaDB for the MySQL tests) under a unique prefix, and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncmy
import asyncmy.errors
import asyncpg
import pytest
import pytest_asyncio

from catalogue import Catalogue, load_catalogue
from stores.check import Report, check
from stores.config import StoresConfig, with_database
from stores.demo_mysql import ensure_tables
from stores.deployment import DEMO_STORES, demo_layout
from stores.draft import draft
from stores.migrate import apply, ensure_database, migrations_for
from tests import _pg
from tests._pg import drop_databases

SETS = ("app", "analytics", "billing", "crm")
MYSQL = os.environ.get("TEST_MYSQL_URL") or "mysql://root@127.0.0.1:3306"
DSAR = Path(sys.executable).with_name("dsar")


@dataclass(frozen=True, slots=True)
class Company:
    server: str  # the PostgreSQL server, its `postgres` database
    prefix: str
    media: Path

    def dsn(self, name: str, server: str | None = None) -> str:
        return with_database(server or self.server, f"{self.prefix}_{name}")

    def config(self, server: str | None = None, mysql: str | None = None) -> StoresConfig:
        return demo_layout(server or self.server, self.media, self.prefix, mysql)

    def stores_file(self, folder: Path) -> Path:
        """The demo company's stores file as a company writes it, with these databases."""
        text = re.sub(
            r'^dsn = "[^"]*/(\w+)"',
            lambda m: f'dsn = "{self.dsn(m[1])}"',
            DEMO_STORES.read_text(),
            flags=re.M,
        )
        path = folder / "stores.toml"
        path.write_text(text)
        return path

    async def execute(self, name: str, *sql: str) -> None:
        conn = await asyncpg.connect(self.dsn(name))
        try:
            for statement in sql:
                await conn.execute(statement)
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with _pg.test_server() as url:
        yield url


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest_asyncio.fixture(loop_scope="session")
async def company(server: str, tmp_path: Path) -> AsyncIterator[Company]:
    prefix = f"dsarchk_{secrets.token_hex(4)}"
    try:
        for name in SETS:
            await ensure_database(server, f"{prefix}_{name}")
            await apply(with_database(server, f"{prefix}_{name}"), migrations_for(name))
        media = tmp_path / "media"
        media.mkdir()
        yield Company(server, prefix, media)
    finally:
        await drop_databases(server, prefix)


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    netloc = f"{role}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def levels(report: Report, section: str) -> list[str]:
    return [f.level for f in report.of(section)]


def dsar(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DSAR_")}
    return subprocess.run(
        [str(DSAR), *args],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def run_dsar(company: Company, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dsar ARGS` as a company runs it: its stores file, a service database, its own home."""
    env = {
        "DSAR_STORES": str(company.stores_file(folder)),
        "DSAR_DATABASE_URL": with_database(company.server, company.prefix),
        "DSAR_HOME": str(folder / "home"),
    }
    return await asyncio.to_thread(dsar, *args, env=env)


async def test_the_demo_company_is_clean(company: Company, catalogue: Catalogue) -> None:
    report = await check(company.config(), catalogue)
    assert report.errors == ()
    sections = {f.section for f in report.findings if f.level == "ok"}
    assert sections == {
        *(f"stores.{s}" for s in (*SETS, "media")),
        *(f"keys.{k}" for k in ("user_id", "email", "customer", "anonymous_id")),
        "search.email",
        *(f"categories.{c}" for c in catalogue.keys),
    }
    # The test server's role is a superuser: the only warnings are that it can write.
    assert {f.section for f in report.warnings} == {f"stores.{s}" for s in SETS}
    assert all("superuser: it can write" in f.message for f in report.warnings)
    (profile,) = report.of("categories.profile")
    assert "a view: indexes are those of its tables: not checked" in profile.message


async def test_a_store_that_does_not_answer_is_an_error(
    company: Company, catalogue: Catalogue
) -> None:
    nobody = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1
    report = await check(company.config(nobody), catalogue)
    (app,) = report.of("stores.app")
    assert (app.level, app.message) == (
        "error",
        "postgres: cannot connect (ConnectionRefusedError)",
    )
    assert report.of("keys.user_id")[0].message == "not checked: store 'app' could not be read"
    assert levels(report, "categories.recordings") == ["ok"]  # the folder is still there


async def test_a_dropped_index_is_a_warning(company: Company, catalogue: Catalogue) -> None:
    await company.execute(
        "analytics", "DROP INDEX page_events_anonymous", "DROP INDEX identifies_user"
    )
    await company.execute("app", "DROP INDEX users_email")
    report = await check(company.config(), catalogue)
    assert report.errors == ()
    (web,) = [f for f in report.of("categories.web_analytics") if f.level == "warn"]
    assert web.message == (
        "no index starts with anonymous_id on analytics.page_events: a full scan per person"
    )
    assert levels(report, "keys.anonymous_id") == ["ok", "warn"]
    assert (
        "starts with user_id on analytics.identifies" in report.of("keys.anonymous_id")[1].message
    )
    assert levels(report, "search.email") == ["ok", "warn"]
    assert "lower(email)" in report.of("search.email")[1].message


async def test_a_renamed_column_is_an_error_and_exit_1(
    company: Company, catalogue: Catalogue, tmp_path: Path
) -> None:
    await company.execute("analytics", "ALTER TABLE page_events RENAME COLUMN url TO page_url")
    await ensure_database(company.server, company.prefix)  # the service database
    report = await check(company.config(), catalogue)
    assert [(f.level, f.section) for f in report.errors] == [("error", "categories.web_analytics")]
    assert report.errors[0].message == (
        "column 'url' (fields.page_url) not found in analytics.page_events"
    )

    done = await run_dsar(company, tmp_path, "stores", "check")
    assert done.returncode == 1, done.stderr
    assert re.search(
        r"^error\s+categories\.web_analytics\s+column 'url' \(fields\.page_url\) not found",
        done.stdout,
        re.M,
    )
    assert re.search(r"^ok\s+categories\.device\s+analytics\.devices", done.stdout, re.M)
    assert done.stdout.splitlines()[-1].endswith("1 error, 4 warnings")


async def test_the_cli_exits_0_with_warnings_and_2_on_an_invalid_file(
    company: Company, tmp_path: Path
) -> None:
    done = await run_dsar(company, tmp_path, "stores", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^warn\s+stores\.app\s+role 'postgres' is a superuser", done.stdout, re.M)

    bad = tmp_path / "bad"
    bad.mkdir()
    stores = company.stores_file(bad)
    stores.write_text(
        stores.read_text().replace('column = "email"\nmatch', 'columns = "email"\nmatch')
    )
    env = {"DSAR_STORES": str(stores), "DSAR_DATABASE_URL": company.server}
    done = await asyncio.to_thread(dsar, "stores", "check", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "dsar stores: stores.toml: keys.email has unknown key 'columns'\n"


async def test_a_role_that_can_write_is_warned(company: Company, catalogue: Catalogue) -> None:
    reader = f"{company.prefix}_reader"
    admin = await asyncpg.connect(company.server)
    await admin.execute(f"CREATE ROLE {reader} LOGIN")
    try:
        for name in SETS:
            await company.execute(name, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}")
        report = await check(company.config(as_role(company.server, reader)), catalogue)
        assert report.errors == ()
        assert report.warnings == ()  # a read-only role: nothing to say
        assert report.of("stores.app")[0].message == f"postgres: connected as '{reader}'"

        await company.execute("analytics", f"GRANT INSERT, DELETE ON page_events TO {reader}")
        await company.execute("app", f"REVOKE SELECT ON users FROM {reader}")  # noqa: S608  # the role this test made
        await company.execute("app", f"GRANT SELECT (id, email) ON users TO {reader}")
        report = await check(company.config(as_role(company.server, reader)), catalogue)
        (warning,) = report.warnings
        assert warning.section == "stores.analytics"
        assert warning.message.startswith(f"role '{reader}' can write to page_events")
        # A column the role may not read is an error naming it.
        assert any(
            f.section == "keys.customer"
            and "'billing_customer' (column)" in f.message
            and "cannot be read" in f.message
            for f in report.errors
        )
    finally:
        await drop_databases(company.server, company.prefix)
        await admin.execute(f"DROP ROLE {reader}")
        await admin.close()


async def test_draft_maps_the_app_database(company: Company, tmp_path: Path) -> None:
    done = await run_dsar(company, tmp_path, "stores", "draft", "app")
    assert done.returncode == 0, done.stderr
    data = tomllib.loads(done.stdout)
    profile = data["categories"]["profile"]
    assert profile["store"] == "app"
    assert profile["table"] == "users"
    assert profile["fields"]["first_name"] == "given_name"
    assert profile["fields"]["last_name"] == "family_name"
    assert profile["match"] == {"id": "user_id"}
    assert "# TODO: the key whose values find" in done.stdout
    assert "# TODO: no column of users looks like street" in done.stdout
    assert data["categories"]["sensitive"]["order"] == ["collected_at", "id"]
    assert data["categories"]["preferences"]["fields"]["language"] == "locale"

    unknown = await run_dsar(company, tmp_path, "stores", "draft", "media")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("dsar stores: no database store named 'media'")


async def test_draft_maps_analytics_by_synonyms(company: Company, catalogue: Catalogue) -> None:
    data = tomllib.loads(await draft(company.dsn("analytics"), catalogue, "analytics"))
    assert set(data["categories"]) == {"device", "web_analytics", "geolocation"}
    web = data["categories"]["web_analytics"]
    assert web["table"] == "page_events"
    assert web["match"] == {"anonymous_id": "anonymous_id"}
    assert web["order"] == ["ts", "id"]
    assert {k: web["fields"][k] for k in ("occurred_at", "page_url")} == {
        "occurred_at": "ts",
        "page_url": "url",
    }


# The CRM on MariaDB.


@pytest_asyncio.fixture(loop_scope="session")
async def mysql_company(company: Company) -> AsyncIterator[str]:
    try:
        conn = await asyncmy.connect(**_mysql_args(MYSQL), connect_timeout=3)
    except (OSError, asyncmy.errors.MySQLError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no MySQL/MariaDB server answers at {MYSQL} ({type(exc).__name__})")
        pytest.skip(f"no MySQL/MariaDB server answers at {MYSQL}")
    crm = company.dsn("crm", MYSQL)
    try:
        await ensure_tables(crm)
        yield crm
    finally:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{company.prefix}_crm`")
        conn.close()


async def test_mysql_store_is_checked(
    company: Company, mysql_company: str, catalogue: Catalogue
) -> None:
    config = company.config(mysql=MYSQL)
    report = await check(config, catalogue)
    assert report.errors == ()
    (crm,) = report.of("stores.crm")
    assert crm.message.startswith("mysql: connected as 'root@")
    assert levels(report, "categories.provided") == ["ok"]

    conn = await asyncmy.connect(**_mysql_args(mysql_company))
    try:
        async with conn.cursor() as cur:
            await cur.execute("DROP INDEX messages_contact ON messages")
            await cur.execute("ALTER TABLE contacts RENAME COLUMN job_title TO title")
    finally:
        conn.close()
    report = await check(config, catalogue)
    assert levels(report, "categories.provided") == ["ok", "warn"]
    assert (
        "starts with contact_email on crm.messages" in report.of("categories.provided")[1].message
    )
    assert [(f.section, f.message) for f in report.errors] == [
        (
            "categories.professional",
            "column 'job_title' (fields.job_title) not found in crm.contacts",
        )
    ]

    data = tomllib.loads(await draft(mysql_company, catalogue, "crm"))
    provided = data["categories"]["provided"]
    assert provided["table"] == "messages"
    assert provided["fields"]["title"] == "subject"
    assert provided["match"] == {"contact_email": "email"}


def _mysql_args(dsn: str) -> dict[str, object]:
    parts = urlsplit(dsn)
    args: dict[str, object] = {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }
    return args | ({"db": parts.path.lstrip("/")} if parts.path.strip("/") else {})
