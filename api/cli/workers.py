"""`dsar serve --workers N`: N server processes forked from the one that holds the port.

The parent listens, migrates and seeds once, then forks; each child runs its own app (its own
pools, admission slots, token and document caches) on the shared listening socket, and the
kernel spreads connections between them. Nothing one child holds in memory is needed by another
(docs/OPERATIONS.md, Several processes; tests/reliability/test_two_processes.py).

The command lives as long as all its children: when one ends, the others are stopped and the
command ends too, so whatever supervises it (systemd, a container) sees it and restarts the
whole. SIGTERM to the parent (or Ctrl-C) stops every child gracefully first.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable


def run(n: int, serve: Callable[[bool], None]) -> None:
    """Forks `n` children, each running `serve(first)`; returns when they have all ended."""
    children: list[int] = []
    # What the parent made is shared with the children page by page until written: frozen,
    # the children's collections never touch it (api/server.py `freeze_startup`).
    gc.freeze()
    try:
        for index in range(n):
            pid = os.fork()
            if pid == 0:
                _child(serve, index == 0)
            children.append(pid)
        os.waitpid(-1, 0)  # the first child to end ends the command
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _child(serve: Callable[[bool], None], first: bool) -> None:
    """Never returns: the parent's clean-up (stopping the embedded database) is not the
    child's to run."""
    code = 1
    try:
        # The parent's SIGTERM handler raises SystemExit; uvicorn installs its own graceful one.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        serve(first)
        code = 0
    except BaseException:  # whatever it was, only this child ends
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
