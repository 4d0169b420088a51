"""Running `dsar` as a user does: a subprocess with this test run's database."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from api.settings import Settings


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_env(settings: Settings, home: Path, **extra: str) -> dict[str, str]:
    """The test run's database (the service's role, and the owner's for migrations), a
    throw-away home, and the setting under test."""
    owner = {
        "DSAR_OWNER_DATABASE_URL": settings.owner_database_url or "",
        "DSAR_AUDIT_SIGNING_KEY": base64.b64encode(settings.audit_signing_key).decode(),
    }
    return {
        "DSAR_DATABASE_URL": str(settings.database_url),
        "DSAR_HOME": str(home),
        **owner,
        **extra,
    }
