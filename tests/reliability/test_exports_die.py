"""Exports whose server dies: SIGKILL mid-download and a restart, SIGTERM mid-download.

No half bundle is ever taken for a whole one (it is no ZIP, and its row never says completed),
the row ends `failed`, and the person can download again at once from the restarted server.
"""

from __future__ import annotations

import asyncio
import io
import signal
import time
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import build_subject, insert_subject
from tests._tokens import TEST_ISSUER
from tests.reliability.conftest import ServerFactory
from tests.reliability.faultproxy import FaultProxy

EVENTS = 20_000
# Once the download has started, every chunk from the databases waits this long: the bundle
# then takes far longer to stream than the test takes to kill the server in the middle of it.
SLOW = 0.05
GRACE = 2  # seconds uvicorn lets in-flight requests finish after SIGTERM
REQUEST = """
mutation { requestExport(input: {format: JSON}) {
  __typename ... on Export { id status downloadUrl } } }
"""


@pytest.fixture
async def heavy(stores: Stores, catalogue: Catalogue, issuer: DevIssuer) -> str:
    """A token for a fresh subject with many events (a fresh one: export limits are per day)."""
    handle = f"rel-heavy-{time.monotonic_ns()}"
    data = build_subject(handle, full=True, sensitive=True, events=EVENTS)
    data.logins.append((TEST_ISSUER, handle))
    await insert_subject(stores, catalogue, data)
    return issuer.mint("customer", handle)


async def request_export(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await client.post(
        "/graphql", json={"query": REQUEST}, headers={"Authorization": f"Bearer {token}"}
    )
    export: dict[str, Any] = r.json()["data"]["requestExport"]
    assert export["__typename"] == "Export", r.text
    return export


async def status(deployment: Deployment, export_id: str) -> tuple[str, str | None, str | None]:
    conn = await asyncpg.connect(deployment.migration_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT status, failure, sha256 FROM exports WHERE id = $1", UUID(export_id)
        )
    finally:
        await conn.close()
    assert row is not None
    return row["status"], row["failure"], row["sha256"]


async def partial_download(
    client: httpx.AsyncClient,
    export_id: str,
    token: str,
    proxy: FaultProxy,
    deployment: Deployment,
    kill: Callable[[], Awaitable[None]],
) -> bytes:
    """Starts a download with slow databases, calls `kill()` once its row says it is streaming,
    then reads whatever still comes."""
    received = bytearray()
    proxy.latency(SLOW)
    try:
        async with client.stream(
            "GET", f"/exports/{export_id}", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status_code == 200
            while (await status(deployment, export_id))[0] != "running":  # noqa: ASYNC110  # a row in another process's database
                await asyncio.sleep(0.02)
            await kill()
            async for chunk in r.aiter_raw():
                received += chunk
    except httpx.TransportError:
        pass  # the server went away: the transfer ends short
    finally:
        proxy.pass_()
    return bytes(received)


def is_whole_zip(data: bytes) -> bool:
    try:
        return zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    except zipfile.BadZipFile:
        return False


async def test_sigkill_mid_download_then_restart(
    start_server: ServerFactory, heavy: str, deployment: Deployment, proxy: FaultProxy
) -> None:
    server = await start_server(proxy=proxy)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        export = await request_export(client, heavy)

        async def kill() -> None:
            server.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(server.proc.wait)

        received = await partial_download(client, export["id"], heavy, proxy, deployment, kill)
    assert not is_whole_zip(received)
    state, _, sha = await status(deployment, export["id"])
    assert state == "running" and sha is None  # nobody was left to say what happened

    restarted = await start_server()
    # Start-up found the export orphaned (its lease died with the process) and failed it.
    state, failure, sha = await status(deployment, export["id"])
    assert (state, sha) == ("failed", None) and failure
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=restarted.url) as client:
        again = await client.get(
            f"/exports/{export['id']}", headers={"Authorization": f"Bearer {heavy}"}, timeout=120
        )
        waited = time.monotonic() - started
    # The person asks again at once and gets the whole bundle; the row says completed.
    assert again.status_code == 200, (again.status_code, again.text[:200])
    assert is_whole_zip(again.content)
    assert (await status(deployment, export["id"]))[0] == "completed"
    print(
        f"\nSIGKILL mid-download: {len(received)} bytes were no ZIP; whole bundle again "
        f"{waited:.2f} s after the restart"
    )


async def test_sigterm_mid_download_ends_cleanly_within_the_grace_period(
    start_server: ServerFactory, heavy: str, deployment: Deployment, proxy: FaultProxy
) -> None:
    server = await start_server(proxy=proxy, env={"DSAR_TEST_GRACE": str(GRACE)})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        export = await request_export(client, heavy)
        stopped: list[float] = []

        async def term() -> None:
            server.proc.send_signal(signal.SIGTERM)
            stopped.append(time.monotonic())

        received = await partial_download(client, export["id"], heavy, proxy, deployment, term)
    code = await asyncio.to_thread(server.proc.wait, 30)
    took = time.monotonic() - stopped[0]
    state, failure, sha = await status(deployment, export["id"])
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    assert took < GRACE + 3, took  # uvicorn's grace period and a little
    # Either the download finished in the grace period, whole and completed, or it did not and
    # its row says failed: never a half bundle marked complete, never a row left running.
    if is_whole_zip(received):
        assert state == "completed" and sha is not None
    else:
        assert state == "failed" and sha is None and failure
    print(f"\nSIGTERM mid-download: {len(received)} bytes, row {state}, exit in {took:.2f} s")
