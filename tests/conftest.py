"""Session fixtures: one real PostgreSQL server, a fresh set of databases per run, the demo seed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from api.settings import DEV_ISSUER, Settings
from catalogue import Catalogue, load_catalogue
from stores.config import with_database
from stores.deployment import Deployment, locate, migrate
from stores.registry import Stores
from stores.seed import seed
from tests._pg import drop_databases, test_server, unique_prefix


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
def settings(pg_server: str, prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        home=tmp_path_factory.mktemp("dsar-home"),
        database_url=with_database(pg_server, prefix),
        secret_key=b"test-secret-key-that-is-long-enough-0123456789",
    )


@pytest.fixture(scope="session")
async def deployment(settings: Settings, pg_server: str, prefix: str) -> AsyncIterator[Deployment]:
    """This run's own databases (service, accounts, billing, analytics), dropped at the end."""
    d = locate(settings)
    await migrate(d)
    yield d
    await drop_databases(pg_server, prefix)


@pytest.fixture(scope="session")
async def stores(deployment: Deployment, catalogue: Catalogue) -> AsyncIterator[Stores]:
    s = await Stores.open(deployment.stores, catalogue)
    await seed(s, catalogue, issuer=DEV_ISSUER)
    yield s
    await s.close()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
