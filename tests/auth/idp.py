"""Driving the test OpenID provider (tests/idp/provider.mjs) from Python."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from api.app import create_app
from api.settings import Settings

from .dpop import DPoPKey

IDP_DIR = Path(__file__).resolve().parent.parent / "idp"
AUDIENCE = "https://dsar.test/api"
OTHER_AUDIENCE = "https://other.test/api"
REDIRECT_URI = "http://127.0.0.1/callback"
CUSTOMER_CLIENT = "dsar-account"
STRONG = "urn:dsar:acr:strong"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class IdP:
    """One running `node provider.mjs PORT` and the ways tests get tokens from it."""

    def __init__(self, log_dir: Path) -> None:
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._log = (log_dir / f"idp-{self.port}.log").open("wb")
        self._proc = subprocess.Popen(
            ["node", "provider.mjs", str(self.port)],
            cwd=IDP_DIR,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                resp = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
                if resp.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"oidc-provider did not start; see {self._log.name}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    async def rotate(self) -> str:
        """Add a new current signing key (the old one stays published); returns its kid."""
        async with httpx.AsyncClient() as client:
            resp = await client.post(f"{self.issuer}/__test/rotate")
        resp.raise_for_status()
        return str(resp.json()["kid"])

    async def client_token(self, client_id: str, scope: str, dpop: DPoPKey | None = None) -> str:
        """Client credentials (partners `partner-one`, `partner-two`; the agent `agent-1`);
        bound to `dpop`'s key (RFC 9449: `cnf.jkt`) when given."""
        url = f"{self.issuer}/token"
        async with httpx.AsyncClient() as client:
            resp = await client.post(
                url,
                data={"grant_type": "client_credentials", "scope": scope},
                auth=(client_id, f"{client_id}-secret"),
                headers={} if dpop is None else {"DPoP": dpop.proof("POST", url)},
            )
        resp.raise_for_status()
        assert resp.json()["token_type"] == ("Bearer" if dpop is None else "DPoP")
        return str(resp.json()["access_token"])

    async def code_tokens(
        self,
        login_hint: str,
        scope: str = "openid dsar:self",
        resource: str | None = None,
        dpop: DPoPKey | None = None,
    ) -> dict[str, Any]:
        """A real authorization-code + PKCE flow for the customer client. `login_hint` is
        `sub|acr|seconds-since-login`; the response holds `access_token` and `id_token`."""
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        params = {
            "response_type": "code",
            "client_id": CUSTOMER_CLIENT,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "login_hint": login_hint,
            **({"resource": resource} if resource else {}),
        }
        async with httpx.AsyncClient(follow_redirects=False) as client:
            resp = await client.get(f"{self.issuer}/auth", params=params)
            for _ in range(10):
                location = resp.headers.get("location", "")
                if not location or location.startswith(REDIRECT_URI):
                    break
                resp = await client.get(urljoin(str(resp.url), location))
            query = parse_qs(urlsplit(location).query)
            assert "code" in query, f"no code: {resp.status_code} {query.get('error')}"
            token = await client.post(
                f"{self.issuer}/token",
                headers={}
                if dpop is None
                else {"DPoP": dpop.proof("POST", f"{self.issuer}/token")},
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"][0],
                    "redirect_uri": REDIRECT_URI,
                    "client_id": CUSTOMER_CLIENT,
                    "code_verifier": verifier,
                    **({"resource": resource} if resource else {}),
                },
            )
        token.raise_for_status()
        result: dict[str, Any] = token.json()
        return result

    async def customer_token(
        self, sub: str, acr: str = STRONG, age: int = 0, dpop: DPoPKey | None = None
    ) -> str:
        tokens = await self.code_tokens(f"{sub}|{acr}|{age}", dpop=dpop)
        return str(tokens["access_token"])


@contextlib.asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app of `settings` in-process, once it loaded its issuers' keys (in the background,
    as in production)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(100):
                if (await client.get("/readyz")).json()["checks"]["keys"]:
                    break
                await asyncio.sleep(0.05)
            yield client
