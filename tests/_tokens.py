"""A trusted test issuer with in-process keys: real ES256 tokens, real validation, no HTTP."""

from __future__ import annotations

from pathlib import Path

from api.devissuer import DevIssuer
from api.settings import DEFAULT_AUDIENCE

TEST_ISSUER = "https://issuer.test"


def test_issuer(home: Path) -> DevIssuer:
    return DevIssuer(home / "test-issuer", TEST_ISSUER, DEFAULT_AUDIENCE)
