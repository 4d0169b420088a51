"""Session fixtures: one real PostgreSQL server, a fresh set of databases per run, the demo seed."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.devissuer import DevIssuer
from api.settings import Settings
from catalogue import Catalogue, load_catalogue
from stores.config import with_database
from stores.deployment import Deployment, migrate
from stores.pool import create_pool
from stores.registry import Stores
from stores.seed import seed
from tests._mysql import drop_mysql_database, mysql_test_server
from tests._pg import (
    create_service_role,
    drop_databases,
    drop_role,
    new_database,
    test_server,
    unique_prefix,
)
from tests._tokens import TEST_ISSUER, test_issuer

# The SMTP server in the test process and the app that mails through it (tests/_mail.py).
pytest_plugins = ["tests._mail"]

# The audit checkpoints' signing key of every test run (tests/_cli.py gives it to the CLI too).
AUDIT_KEY = bytes(range(100, 132))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with test_server() as url:
        yield url


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="session")
def prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="session")
def service_role(pg_server: str, prefix: str) -> Iterator[str]:
    """The role the service connects as: this run's own, bound by row-level security."""
    name = f"{prefix}_api"
    url = asyncio.run(create_service_role(pg_server, name))
    yield url
    asyncio.run(drop_role(pg_server, name))


@pytest.fixture(scope="session")
def settings(
    pg_server: str, prefix: str, service_role: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    # The demo company's CRM runs on MySQL in the tests: TEST_MYSQL_URL, else the local
    # MariaDB if it answers; under CI=true its absence fails the run instead of skipping it.
    mysql = mysql_test_server()
    if mysql is None and os.environ.get("CI") == "true":
        pytest.fail("no MySQL/MariaDB server answers (TEST_MYSQL_URL)")
    yield Settings(
        home=tmp_path_factory.mktemp("dsar-home"),
        # The service as its own role; migrations (and the tests' own look inside) as the owner.
        database_url=with_database(service_role, prefix),
        owner_database_url=with_database(pg_server, prefix),
        secret_key=b"test-secret-key-that-is-long-enough-0123456789",
        audit_signing_key=AUDIT_KEY,
        demo_mysql_url=mysql,
    )
    if mysql is not None:
        drop_mysql_database(mysql, f"{prefix}_crm")


@pytest.fixture(scope="session")
async def deployment(settings: Settings, pg_server: str, prefix: str) -> AsyncIterator[Deployment]:
    """This run's own databases (service, accounts, billing, analytics), dropped at the end."""
    d = settings.locate()
    await migrate(d)
    yield d
    await drop_databases(pg_server, prefix)


@pytest.fixture(scope="session")
async def owner_db(deployment: Deployment) -> AsyncIterator[asyncpg.Pool]:
    """The service database as its owner: what a test looks at or sets up behind the service
    (the service's own role sees only the rows its transaction is bound to)."""
    pool = await asyncpg.create_pool(deployment.migration_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def db(deployment: Deployment) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the service database as its owner, for a test of its own: where the
    test needs a connection's own state (a transaction, a renamed function) rather than the
    shared `owner_db` pool."""
    conn = await asyncpg.connect(deployment.migration_dsn)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
async def stores(deployment: Deployment, catalogue: Catalogue) -> AsyncIterator[Stores]:
    s = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
    await seed(s, catalogue, issuer=TEST_ISSUER)
    yield s
    await s.close()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def issuer(settings: Settings) -> DevIssuer:
    """A trusted issuer whose keys the test app knows in-process: real ES256 tokens."""
    return test_issuer(settings.home)


@pytest.fixture
async def app(
    settings: Settings, deployment: Deployment, stores: Stores, issuer: DevIssuer
) -> AsyncIterator[Starlette]:
    application = create_app(settings, key_sources={TEST_ISSUER: issuer.key_set()})
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def icu_pool(pg_server: str, prefix: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated service database whose default collation is not code point order (ICU
    English sorts "Z" after "a"), so that only an explicit `COLLATE "C"` keeps keys in order."""
    name = f"{prefix}_icu_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en'"
        )
    finally:
        await admin.close()
    p = await create_pool(await new_database(pg_server, name), max_size=2)
    assert await p.fetchval("SELECT 'Z' > 'a'")  # its own order is not code points
    yield p
    await p.close()
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
