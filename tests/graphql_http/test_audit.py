"""GraphQL over HTTP conformance: the `graphql-http` package's own server audits (npm, this
folder's package.json) against dsar on a real socket, with a customer's token.

In development (introspection on) every audit passes but the optional GET ones: 0 errors and
0 warnings. In production the only audits that do not pass are those whose query asks
`__type`, which is introspection and refused there on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
import pytest

from api.devissuer import DevIssuer
from api.settings import Settings
from stores.deployment import Deployment
from stores.registry import Stores
from tests.reliability._server import LiveServer

HERE = Path(__file__).resolve().parent
# The audits that send GET: dsar runs GraphQL over POST only (GraphiQL aside), which the spec
# allows ("MAY"); their status is "notice", never a warning or an error.
GET_AUDITS = {"5A70", "D6D5", "6A70"}
# The audits whose query is `{ __type(name: ...) { name } }`: introspection.
INTROSPECTION_AUDITS = {"2EA1", "28B9"}

Start = Callable[[dict[str, str]], Coroutine[Any, Any, LiveServer]]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node is missing: CI must run the GraphQL over HTTP audits (.ci/run)")
        pytest.skip("node is needed for the GraphQL over HTTP audits")
    if not (HERE / "node_modules" / "graphql-http").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True
        )
    return node


@pytest.fixture
async def start(
    settings: Settings, deployment: Deployment, stores: Stores, tmp_path: Path
) -> AsyncIterator[Start]:
    servers: list[LiveServer] = []

    async def started(env: dict[str, str]) -> LiveServer:
        server = LiveServer(
            tmp_path,
            LiveServer.env_for(
                settings, deployment.stores, service_dsn=deployment.service_dsn, extra=env
            ),
        )
        servers.append(server)
        await server.wait_up()
        return server

    yield started
    for server in servers:
        await server.stop()


def audit(url: str, token: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [_node(), str(HERE / "audit.mjs"), url + "/graphql"],
        cwd=HERE,
        env={**os.environ, "DSAR_AUDIT_TOKEN": token},
        capture_output=True,
        check=True,
        timeout=120,
    )
    results: list[dict[str, Any]] = orjson.loads(done.stdout)
    assert len(results) > 50  # the whole suite ran
    return results


def _failed(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in results if r["status"] != "ok"}


def _said(failed: dict[str, dict[str, Any]]) -> str:
    return "\n".join(
        f"{i} {r['status']} {r['name']}: {r['reason']} ({r['responseStatus']}) "
        f"{r['responseBody'][:200]}"
        for i, r in sorted(failed.items())
    )


async def test_development_passes_every_audit(start: Start, issuer: DevIssuer) -> None:
    _node()
    server = await start({"DSAR_DEV_ISSUER": "1"})
    results = audit(server.url, issuer.mint("customer", "alice"))
    failed = _failed(results)
    assert [r for r in failed.values() if r["status"] in ("error", "warn")] == [], _said(failed)
    assert set(failed) <= GET_AUDITS, _said(failed)
    assert {failed[i]["status"] for i in failed} <= {"notice"}


async def test_production_fails_only_the_audits_that_ask_for_introspection(
    start: Start, issuer: DevIssuer
) -> None:
    _node()
    server = await start({})
    results = audit(server.url, issuer.mint("customer", "alice"))
    failed = _failed(results)
    assert set(failed) - GET_AUDITS == INTROSPECTION_AUDITS, _said(failed)
    for audit_id in INTROSPECTION_AUDITS:
        assert "introspection" in failed[audit_id]["responseBody"].lower(), failed[audit_id]
