"""A real OpenID provider (tests/idp, npm `oidc-provider`) for the token tests.

`idp` is one provider for the whole session; `start_idp()` starts a private one for a test that
rotates keys or stops the provider. Tests that need no provider never start one.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.jwks import IssuerKeys

from .idp import IDP_DIR, IdP


def _ensure_node() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the oidc-provider tests (tests/idp)")
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=IDP_DIR, check=True, capture_output=True
        )


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdP]:
    _ensure_node()
    provider = IdP(tmp_path_factory.mktemp("idp"))
    yield provider
    provider.stop()


@pytest.fixture
def start_idp(tmp_path: Path) -> Iterator[Callable[[], IdP]]:
    started: list[IdP] = []

    def start() -> IdP:
        _ensure_node()
        started.append(IdP(tmp_path))
        return started[-1]

    yield start
    for provider in started:
        provider.stop()


@pytest.fixture
async def make_keys() -> AsyncIterator[Callable[..., IssuerKeys]]:
    """`make_keys(issuer, **options)`: an IssuerKeys whose HTTP client is closed after the test."""
    made: list[IssuerKeys] = []

    def make(issuer: str, **options: Any) -> IssuerKeys:
        made.append(IssuerKeys(issuer, **options))
        return made[-1]

    yield make
    for keys in made:
        await keys.aclose()
