"""Fixtures for the reliability tests: marked subjects, a fault proxy, servers in subprocesses.

Every server a test starts is stopped at the end of the test and its whole log checked: JSON
lines only, no traceback, no SQL, no token, no subject's marker or e-mail address.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from api.devissuer import DevIssuer
from api.settings import Settings
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import subject_id
from tests._factories import insert_marked
from tests.reliability._server import LiveServer
from tests.reliability.faultproxy import FaultProxy

# Words that must never reach a log line: a traceback, SQL, a driver's error text.
LOG_FORBIDDEN = ("Traceback", 'File "', "SELECT ", " FROM ", "@example.com", "Bearer ")


@dataclass(frozen=True, slots=True)
class Marked:
    """A subject whose every text value starts with `marker`, and a customer token for it."""

    handle: str
    marker: str
    token: str

    @property
    def id(self) -> str:
        return str(subject_id(self.handle))


@dataclass(slots=True)
class Population:
    subjects: list[Marked]
    support_token: str
    partner_token: str
    markers: list[str] = field(default_factory=list)

    def others(self, subject: Marked) -> list[str]:
        return [m for m in self.markers if m != subject.marker]


@pytest.fixture(scope="session")
async def population(stores: Stores, catalogue: Catalogue, issuer: DevIssuer) -> Population:
    run = secrets.token_hex(3)
    subjects = []
    for n in range(6):
        handle = f"rel-{run}-{n}"
        marker = f"RLM{n}{secrets.token_hex(4).upper()}"
        await insert_marked(stores, catalogue, handle, marker, 60 + n)
        # Tokens live for the whole session (a soak run included).
        subjects.append(Marked(handle, marker, issuer.mint("customer", handle, ttl=4 * 3600)))
    return Population(
        subjects,
        support_token=issuer.mint("support", f"rel-agent-{run}", ttl=4 * 3600),
        partner_token=issuer.mint("partner", f"rel-partner-{run}", ttl=4 * 3600),
        markers=[s.marker for s in subjects],
    )


def upstream_of(dsn: str) -> tuple[str, int] | str:
    """Where a PostgreSQL URL points: (host, port), or a unix socket path."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    port = int(query.get("port") or parts.port or 5432)
    host = query.get("host") or parts.hostname or "127.0.0.1"
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}"
    return (host, port)


@pytest.fixture
async def proxy(pg_server: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(upstream_of(pg_server)) as p:
        yield p


ServerFactory = Callable[..., Any]


@pytest.fixture
async def start_server(
    tmp_path: Path, settings: Settings, deployment: Deployment, population: Population
) -> AsyncIterator[ServerFactory]:
    """`await start_server(proxy=None, query=None, env=None, ready=True)`: a running server.

    `proxy` routes every database connection through a FaultProxy; `query` is added to every
    database URL (`{"statement_timeout": "500"}`); each server gets its own application_name,
    so a test can find (and kill) exactly its backends.
    """
    started: list[LiveServer] = []

    async def start(
        proxy: FaultProxy | None = None,
        query: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        ready: bool = True,
    ) -> LiveServer:
        app_name = f"dsar-rel-{secrets.token_hex(4)}"
        params = {"application_name": app_name, **(query or {})}

        def dsn(url: str) -> str:
            url = proxy.dsn(url) if proxy is not None else url
            sep = "&" if urlsplit(url).query else "?"
            return url + sep + "&".join(f"{k}={v}" for k, v in params.items())

        server = LiveServer(
            tmp_path,
            LiveServer.env_for(
                settings, deployment.stores, service_dsn=deployment.service_dsn, dsn=dsn, extra=env
            ),
        )
        server.application_name = app_name
        started.append(server)
        await server.wait_up()
        if ready:
            await server.wait_ready()
        return server

    yield start
    secrets_seen = [
        *population.markers,
        *(s.token for s in population.subjects),
        population.support_token,
        population.partner_token,
    ]
    for server in started:
        await server.stop()
        check_log(server, secrets_seen)


def check_log(server: LiveServer, secrets_seen: list[str]) -> None:
    text = server.log()
    records = server.log_records()  # every line is JSON
    assert records, "the server logged nothing"
    for word in (*LOG_FORBIDDEN, *secrets_seen):
        assert word not in text, f"the server log holds {word[:12]!r}…"
    assert all("exc_info" not in r and "stack" not in r for r in records)
