"""A real browser against a real server and a real identity provider.

- Debian's chromium (`apt-get install chromium`), driven by Playwright for Python through
  `executable_path`: browsers are never downloaded (`playwright install` is not used).
- dsar under uvicorn on a free port of 127.0.0.1, in a thread of this process, configured as a
  deployment would be: the provider as its issuer, the account page as its OAuth client.
- the OpenID provider of tests/idp (npm oidc-provider), its headless login driven by
  `login_hint` (`sub|acr|seconds-ago`).
- axe-core from npm (tests/browser/package.json), added to every page by Playwright outside
  the page's Content-Security-Policy, which stays in force for everything else.

Without chromium the browser tests skip, except in CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import asyncpg
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Route, async_playwright

from api.app import create_app
from api.settings import DEV_ISSUER, Settings
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import DEMO_HANDLES, SubjectData
from tests._factories import insert_marked
from tests.auth.idp import AUDIENCE, IDP_DIR, IdP

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = HERE.parent / "artifacts" / "browser"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE_CLIENT = "dsar-account-page"
PAGE_SECRET = "dsar-account-page-secret"  # the test provider's, in provider.mjs


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what}: CI must run the browser tests (see .ci/run)")
    pytest.skip(f"{what}: the browser tests need it (CI installs it)")


def _npm_ci(folder: Path, package: str) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        _missing("node and npm are not installed")
    if not (folder / "node_modules" / package).is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, capture_output=True
        )


@pytest.fixture(scope="session")
def account_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdP]:
    _npm_ci(IDP_DIR, "oidc-provider")
    provider = IdP(tmp_path_factory.mktemp("account-idp"))
    yield provider
    provider.stop()


@dataclass(frozen=True)
class Person:
    handle: str  # their `sub` at the provider
    marker: str  # in every text value of theirs
    data: SubjectData


@pytest.fixture
async def person(stores: Stores, catalogue: Catalogue, account_idp: IdP) -> Person:
    """A subject of this test only, whose login at the provider is linked to it."""
    handle, marker = f"web-{uuid4().hex[:10]}", f"WEB{uuid4().hex[:8]}"
    data = await insert_marked(stores, catalogue, handle, marker, 92)
    await stores.subjects.link(data.id, account_idp.issuer, handle)
    return Person(handle, marker, data)


def page_settings(settings: Settings, idp: IdP) -> Settings:
    """A deployment's settings: the provider is the issuer, the page its OAuth client."""
    return replace(
        settings,
        issuers=(idp.issuer,),
        audience=AUDIENCE,
        account_client_id=PAGE_CLIENT,
        account_client_secret=PAGE_SECRET,
    )


class ServerThread:
    """uvicorn serving `create_app(settings)` on 127.0.0.1 from a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        # Bound here and handed to uvicorn: a port closed and bound again later could be taken
        # in between (make test runs two test processes).
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="dsar-live", daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the dsar server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture(scope="session")
def live(
    settings: Settings, deployment: Deployment, stores: Stores, account_idp: IdP
) -> Iterator[ServerThread]:
    with ServerThread(page_settings(settings, account_idp)) as server:
        yield server


@pytest.fixture
async def demo_links(owner_db: asyncpg.Pool) -> None:
    """`make serve` links the demo people to the development issuer; so do the demo's tests."""
    await owner_db.executemany(
        "INSERT INTO identity_links (issuer, sub, subject_id) "
        "SELECT $1, handle, id FROM subjects WHERE handle = $2 ON CONFLICT DO NOTHING",
        [(DEV_ISSUER, h) for h in DEMO_HANDLES],
    )


@pytest.fixture(scope="session")
def chromium_installed() -> None:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    _npm_ci(HERE, "axe-core")


@pytest.fixture(scope="session")
async def chromium(chromium_installed: None) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


@pytest.fixture
async def context(chromium: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile that talks to 127.0.0.1 only: a page that asks for anything
    elsewhere (the provider's pages import web fonts) is answered by nobody."""
    ctx = await chromium.new_context(accept_downloads=True, locale="en-US")

    async def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            await route.abort("blockedbyclient")

    await ctx.route("**/*", local_only)
    await ctx.add_init_script(path=str(AXE))
    yield ctx
    await ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
