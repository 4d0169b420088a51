"""The identity provider down, frozen or rotating keys, against a running server.

The provider is the real one of tests/idp (npm `oidc-provider`), started on a port chosen here
so it can come up late; SIGSTOP freezes it (connections are accepted, nothing answers).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Self
from uuid import UUID

import httpx
import pytest

from stores.registry import Stores
from tests.auth.forge import claims, new_key, sign
from tests.auth.idp import AUDIENCE, IDP_DIR, IdP
from tests.reliability._checks import judge
from tests.reliability.conftest import Marked, Population, ServerFactory

# IssuerKeys refetches for an unknown kid at most once per 30 s (api/jwks.py); a bit more.
COOLDOWN = 31.0


class PortIdP(IdP):
    """The test provider on a given port, started without waiting (it may come up late)."""

    def __init__(self, log_dir: Path, port: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self._log = (log_dir / f"idp-{port}-{time.monotonic_ns()}.log").open("wb")
        self._proc = subprocess.Popen(
            ["node", "provider.mjs", str(port)],
            cwd=IDP_DIR,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_up(self) -> None:
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                try:
                    url = f"{self.issuer}/.well-known/openid-configuration"
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self._proc.poll() is None, "the provider exited"
                assert time.monotonic() < deadline, "the provider did not start"
                await asyncio.sleep(0.05)

    def freeze(self) -> None:
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self.thaw()
        super().stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[Callable[[int], PortIdP]]:
    if shutil.which("node") is None or not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("node and tests/idp/node_modules are needed (npm ci in tests/idp)")
    started: list[PortIdP] = []

    def start(port: int) -> PortIdP:
        started.append(PortIdP(tmp_path, port))
        return started[-1]

    yield start
    for p in started:
        p.stop()


def env_for(issuer: str) -> dict[str, str]:
    return {"DSAR_OIDC_ISSUER": issuer, "DSAR_AUDIENCE": AUDIENCE}


async def link(stores: Stores, issuer: str, subject: Marked) -> str:
    """Links the login `subject.handle` at `issuer` to the subject; returns that login."""
    await stores.subjects.link(UUID(str(subject.id)), issuer, subject.handle)
    return subject.handle


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": "{ me { profile { firstName email } } }"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def foreign_token(issuer: str) -> str:
    """A well-formed token naming `issuer`, signed by a key the provider never had."""
    return sign(new_key(), claims(iss=issuer, aud=AUDIENCE))


async def readyz(client: httpx.AsyncClient) -> tuple[int, dict[str, bool]]:
    r = await client.get("/readyz")
    if r.status_code != 200:
        assert r.headers["retry-after"].isdigit()
    return r.status_code, r.json()["checks"]


async def test_provider_down_at_start_then_up(
    provider: Callable[[int], PortIdP],
    start_server: ServerFactory,
    population: Population,
    stores: Stores,
) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    subject = population.subjects[0]
    await link(stores, issuer, subject)
    server = await start_server(env=env_for(issuer), ready=False)
    async with httpx.AsyncClient(base_url=server.url) as client:
        status, checks = await readyz(client)
        assert status == 503 and checks["keys"] is False
        assert all(v for k, v in checks.items() if k != "keys")  # the databases are fine
        started = time.monotonic()
        r = await me(client, foreign_token(issuer))
        assert r.status_code == 401 and time.monotonic() - started < 4
        assert "invalid_token" in r.headers["www-authenticate"]

        idp = provider(port)
        await idp.wait_up()
        up = time.monotonic()
        ready_after = await server.wait_ready(True, within=15)
        token = await idp.customer_token(subject.handle)
        verdict = judge(await me(client, token), subject.marker, population.others(subject))
    assert verdict.outcome == "ok", verdict
    print(
        f"\nprovider down at start: ready {ready_after:.2f} s after it answered "
        f"(started {up - started:.2f} s after the first refusal)"
    )


@pytest.mark.soak
async def test_provider_frozen_at_start_then_thawed(
    provider: Callable[[int], PortIdP],
    start_server: ServerFactory,
    population: Population,
    stores: Stores,
) -> None:
    idp = provider(free_port())
    await idp.wait_up()
    subject = population.subjects[1]
    await link(stores, idp.issuer, subject)
    token = await idp.customer_token(subject.handle)
    idp.freeze()
    server = await start_server(env=env_for(idp.issuer), ready=False)
    async with httpx.AsyncClient(base_url=server.url) as client:
        status, checks = await readyz(client)
        assert status == 503 and checks["keys"] is False
        # Requests meanwhile are refused, within a bounded time, whatever the provider does.
        started = time.monotonic()
        answers = await asyncio.gather(*(me(client, token) for _ in range(5)))
        waited = time.monotonic() - started
        assert {r.status_code for r in answers} == {401}, [r.status_code for r in answers]
        assert waited < 8, waited
        idp.thaw()
        ready_after = await server.wait_ready(True, within=15)
        verdict = judge(await me(client, token), subject.marker, population.others(subject))
    assert verdict.outcome == "ok", verdict
    print(
        f"\nprovider frozen at start: 401 within {waited:.2f} s; ready {ready_after:.2f} s "
        "after it thawed"
    )


async def test_rotation_while_the_provider_is_frozen_keeps_the_last_good_keys(
    provider: Callable[[int], PortIdP],
    start_server: ServerFactory,
    population: Population,
    stores: Stores,
) -> None:
    idp = provider(free_port())
    await idp.wait_up()
    subject = population.subjects[2]
    await link(stores, idp.issuer, subject)
    server = await start_server(env=env_for(idp.issuer))
    old = await idp.customer_token(subject.handle)
    await idp.rotate()
    new = await idp.customer_token(subject.handle)
    idp.freeze()
    async with httpx.AsyncClient(base_url=server.url) as client:
        started = time.monotonic()
        old_answers, new_answers = await asyncio.gather(
            asyncio.gather(*(me(client, old) for _ in range(5))),
            asyncio.gather(*(me(client, new) for _ in range(5))),
        )
        waited = time.monotonic() - started
        status, checks = await readyz(client)
    # The last good keys keep working; a token signed by a key not yet fetched is a 401.
    for r in old_answers:
        assert judge(r, subject.marker, population.others(subject)).outcome == "ok"
    assert {r.status_code for r in new_answers} == {401}
    assert waited < 4, waited
    assert status == 200 and checks["keys"] is True
    idp.thaw()


@pytest.mark.soak
async def test_rotation_is_picked_up_after_the_cooldown(
    provider: Callable[[int], PortIdP],
    start_server: ServerFactory,
    population: Population,
    stores: Stores,
) -> None:
    """A token signed by a new key refetches the JWKS once the cooldown (30 s) is over; while the
    provider is frozen that refetch fails within its time limit and the old keys keep working."""
    idp = provider(free_port())
    await idp.wait_up()
    subject = population.subjects[3]
    await link(stores, idp.issuer, subject)
    server = await start_server(env=env_for(idp.issuer))
    old = await idp.customer_token(subject.handle)
    await idp.rotate()
    new = await idp.customer_token(subject.handle)
    idp.freeze()
    async with httpx.AsyncClient(base_url=server.url) as client:
        await asyncio.sleep(COOLDOWN)
        started = time.monotonic()
        refetch = asyncio.create_task(me(client, new))
        await asyncio.sleep(0.2)
        for _ in range(5):  # known keys never wait for a refetch in progress
            t = time.monotonic()
            assert (
                judge(await me(client, old), subject.marker, population.others(subject)).outcome
                == "ok"
            )
            assert time.monotonic() - t < 1
        assert (await refetch).status_code == 401
        refused_in = time.monotonic() - started
        assert refused_in < 8, refused_in
        assert (await readyz(client))[0] == 200
        idp.thaw()
        await asyncio.sleep(COOLDOWN)
        verdict = judge(await me(client, new), subject.marker, population.others(subject))
    assert verdict.outcome == "ok", verdict
    print(f"\nrotation: new key refused in {refused_in:.2f} s while frozen, accepted after thaw")


class MisbehavingIssuer:
    """A provider on a free loopback port whose every connection `_answer` serves."""

    def __init__(self) -> None:
        self.issuer = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.issuer = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def discovery(self) -> bytes:
        return json.dumps({"issuer": self.issuer, "jwks_uri": self.issuer + "/jwks"}).encode()


class DribblingIssuer(MisbehavingIssuer):
    """A misbehaving provider: valid discovery and JWKS documents, sent one byte per `pace` s."""

    def __init__(self, pace: float) -> None:
        super().__init__()
        self.pace = pace

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            body = self.discovery()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
            writer.write(b"content-length: %d\r\n\r\n" % len(body))
            for byte in body:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(self.pace)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.mark.soak
async def test_a_provider_that_dribbles_cannot_hold_requests(
    start_server: ServerFactory, population: Population
) -> None:
    """Each read of a trickling provider beats the 3 s read timeout; the whole refresh must
    still end in bounded time, or every request with that issuer's token waits behind it."""
    async with DribblingIssuer(pace=1.0) as slow:
        server = await start_server(env=env_for(slow.issuer), ready=False)
        async with httpx.AsyncClient(base_url=server.url) as client:
            started = time.monotonic()
            r = await me(client, foreign_token(slow.issuer))
            waited = time.monotonic() - started
            status, checks = await readyz(client)
    assert r.status_code == 401
    assert waited < 10, waited
    assert status == 503 and checks["keys"] is False
    print(f"\ndribbling provider: token refused in {waited:.2f} s")


class SlowJwksIssuer(MisbehavingIssuer):
    """A provider whose discovery answers at once and whose JWKS takes `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.jwks_asked = asyncio.Event()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if b"/jwks" in head.split(b"\r\n", 1)[0]:
                    self.jwks_asked.set()
                    await asyncio.sleep(self.delay)
                    body = b'{"keys": []}'
                else:
                    body = self.discovery()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
                writer.write(b"content-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def test_a_slow_jwks_holds_a_token_with_an_unknown_kid_2_s_at_most(
    start_server: ServerFactory, population: Population
) -> None:
    """A JWKS endpoint that takes 10 s: a token whose key the server does not know waits at most
    2 s for its 401, even while the server's own refresh holds the fetch (issue 18, item 10)."""
    async with SlowJwksIssuer(delay=10.0) as slow:
        server = await start_server(env=env_for(slow.issuer), ready=False)
        async with httpx.AsyncClient(base_url=server.url) as client:
            await asyncio.wait_for(slow.jwks_asked.wait(), 10)  # the refresh is under way
            started = time.monotonic()
            r = await me(client, foreign_token(slow.issuer))
            waited = time.monotonic() - started
    assert r.status_code == 401
    assert "invalid_token" in r.headers["www-authenticate"]
    # The bound is 2 s; the margin is the request's own way through a busy machine. Before the
    # bound, this waited for the fetch's 3 s read timeout.
    assert waited < 2.6, waited
    print(f"\nslow JWKS (10 s): token with an unknown kid refused in {waited:.2f} s")
