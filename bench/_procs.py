"""The servers a benchmark starts (dsar, the bare endpoint, PostGraphile) and what /proc says
about them: resident memory, its peak, and CPU time.

Each server is a child process we started; it is stopped by its own pid, never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":", 1) for line in f if ":" in line)


def rss_mb(pid: int) -> float:
    return int(_status(pid)["VmRSS"].split()[0]) / 1024


def peak_rss_mb(pid: int) -> float:
    """The highest resident size since the last `reset_peak` (VmHWM)."""
    return int(_status(pid)["VmHWM"].split()[0]) / 1024


def reset_peak(pid: int) -> bool:
    """Sets VmHWM back to the current RSS (Linux `clear_refs` 5); False where not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # fields from 3 (state) on


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a server and all its children, live or ended: PostgreSQL's postmaster and
    its backends. Ended children are in the parent's cutime and cstime once reaped."""
    fields = _stat(pid)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(int(entry.name))
        except OSError:
            continue  # it ended meanwhile
        if int(child[1]) == pid:  # ppid (field 4)
            total += int(child[11]) + int(child[12])
    return total / _TICK


class Server:
    """A child HTTP server: started, waited for until `ready_path` answers 200, stopped."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        port: int,
        log: Path,
        ready_path: str = "/healthz",
        ready_post: object = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.port = port
        self.log = log
        self.ready_path = ready_path
        self.ready_post = ready_post  # a JSON body to POST instead of a GET (GraphQL servers)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    def start(self, timeout: float = 120.0) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603  # our own servers, argv from this package
            self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{tail}")
            try:
                url = self.url + self.ready_path
                if self.ready_post is None:
                    r = httpx.get(url, timeout=2)
                else:
                    r = httpx.post(url, json=self.ready_post, timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s (see {self.log})")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
