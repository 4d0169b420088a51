"""Load with wrk (Debian's `wrk`): one POST body, fixed connections, figures from `wrk.lua`.

Every load is bounded: a fixed duration, or until the benchmark stops it (then at most
`MAX_SECONDS`), and only ever aimed at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

SCRIPT = Path(__file__).with_name("wrk.lua")
ROOT = str(Path(__file__).resolve().parent.parent)
MAX_SECONDS = 900


class LoadError(Exception):
    """wrk is missing, failed, or saw errors (refused connections, non-2xx answers)."""


@dataclass(frozen=True, slots=True)
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # connect, read, write and timeout errors plus non-2xx answers

    @classmethod
    def parse(cls, output: str) -> Load:
        for line in output.splitlines():
            if line.startswith("WRKJSON "):
                d = json.loads(line[len("WRKJSON ") :])
                seconds = d["duration_us"] / 1e6
                errors = sum(d[k] for k in ("connect", "read", "write", "timeout", "status"))
                return cls(
                    requests=d["requests"],
                    seconds=seconds,
                    rps=d["requests"] / seconds if seconds else 0.0,
                    p50_ms=d["p50_us"] / 1000,
                    p90_ms=d["p90_us"] / 1000,
                    p99_ms=d["p99_us"] / 1000,
                    max_ms=d["max_us"] / 1000,
                    errors=errors,
                )
        raise LoadError(f"wrk printed no figures:\n{output[-1500:]}")


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise LoadError("wrk is not installed: apt-get install -y wrk")
    return path


class Wrk:
    """One wrk run against `url`; `await run(seconds)` or `start()` ... `await stop()`."""

    def __init__(
        self, url: str, body: bytes, *, token: str | None = None, connections: int = 16
    ) -> None:
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            raise LoadError("load is only ever sent to this machine")
        self.url = url
        self.connections = connections
        self._body = tempfile.NamedTemporaryFile(
            prefix="dsar-bench-", suffix=".json"
        )  # closed in stop()
        self._body.write(body)
        self._body.flush()
        self._env = {"WRK_BODY_FILE": self._body.name, "WRK_TOKEN": token or ""}
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, seconds: float = MAX_SECONDS) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            wrk_path(),
            "-t1",
            f"-c{self.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(SCRIPT),
            self.url,
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def stop(self, interrupt: bool = True) -> Load:
        proc = self._proc
        assert proc is not None, "wrk was not started"
        if interrupt and proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # wrk then reports what it measured so far
        out, _ = await proc.communicate()
        self._body.close()
        return Load.parse(out.decode(errors="replace"))

    async def run(self, seconds: float) -> Load:
        await self.start(seconds)
        return await self.stop(interrupt=False)


class Paced:
    """`bench.paced` in its own process: requests at a fixed rate, latency from when each was
    due; the same `run(seconds)` or `start()` ... `await stop()` as `Wrk`."""

    def __init__(self, url: str, body: bytes, *, token: str, rate: float) -> None:
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            raise LoadError("load is only ever sent to this machine")
        self.url = url
        self.rate = rate
        self._body = tempfile.NamedTemporaryFile(
            prefix="dsar-bench-", suffix=".json"
        )  # closed in stop()
        self._body.write(body)
        self._body.flush()
        self._env = {**os.environ, "BENCH_TOKEN": token}
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, seconds: float = MAX_SECONDS) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.paced",
            "--url",
            self.url,
            "--body",
            self._body.name,
            "--rate",
            f"{self.rate:.3f}",
            "--seconds",
            f"{seconds:.1f}",
            env=self._env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await asyncio.sleep(1.0)  # the interpreter and its client are up before the work starts

    async def stop(self, interrupt: bool = True) -> Load:
        proc = self._proc
        assert proc is not None, "the paced load was not started"
        if interrupt and proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        out, _ = await proc.communicate()
        self._body.close()
        text = out.decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("PACEDJSON "):
                d = json.loads(line[len("PACEDJSON ") :])
                return Load(
                    requests=d["requests"],
                    seconds=d["seconds"],
                    rps=d["rate"],
                    p50_ms=d["p50_ms"],
                    p90_ms=d["p90_ms"],
                    p99_ms=d["p99_ms"],
                    max_ms=d["max_ms"],
                    errors=d["errors"],
                )
        raise LoadError(f"the paced load printed no figures:\n{text[-1500:]}")

    async def run(self, seconds: float) -> Load:
        await self.start(seconds)
        return await self.stop(interrupt=False)
