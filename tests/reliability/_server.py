"""A dsar server in its own process on a real socket, its log captured, its memory measurable."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson

from api.settings import Settings
from stores.config import StoresConfig
from stores.deployment import DEMO_STORES

REPO = Path(__file__).resolve().parents[2]


def stores_toml(config: StoresConfig, dsn: Any = None) -> str:
    """The demo company's stores file for `config`, each PostgreSQL DSN passed through `dsn`
    (a proxy's, say)."""
    lines: list[str] = ["format = 2", ""]
    for s in config.stores:
        lines.append(f"[stores.{s.name}]")
        lines.append(f'kind = "{s.kind}"')
        if s.kind == "files":
            lines.append(f'path = "{s.path}"')
        else:
            lines.append(f'dsn = "{dsn(s.dsn) if dsn and s.kind == "postgres" else s.dsn}"')
        lines.append("")
    demo = DEMO_STORES.read_text()
    return "\n".join(lines) + demo[demo.index("# The person's keys") :]


class LiveServer:
    """`python -m tests.reliability.serve` with the given environment; stderr is the log."""

    def __init__(self, folder: Path, env: Mapping[str, str]) -> None:
        self.folder = folder
        self.log_path = folder / f"server-{time.monotonic_ns()}.log"
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.application_name = ""  # set by the fixture that chose it
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DSAR_", "TEST_DATABASE"))
        }
        full_env.update(env)
        full_env["DSAR_TEST_FD"] = str(self._sock.fileno())
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.serve"],
            cwd=REPO,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=[self._sock.fileno()],
        )
        self._sock.close()  # the child holds it now

    @classmethod
    def env_for(
        cls,
        settings: Settings,
        config: StoresConfig,
        *,
        service_dsn: str,
        dsn: Any = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The DSAR_* environment for `settings`' databases, DSNs passed through `dsn`."""
        stores_file = settings.home / f"stores-{time.monotonic_ns()}.toml"
        stores_file.write_text(stores_toml(config, dsn))
        return {
            "DSAR_HOME": str(settings.home),
            "DSAR_DATABASE_URL": dsn(service_dsn) if dsn else service_dsn,
            "DSAR_STORES": str(stores_file),
            "DSAR_SECRET_KEY": settings.secret_key.decode(),
            "DSAR_AUDIT_SIGNING_KEY": base64.b64encode(settings.audit_signing_key).decode(),
            **(extra or {}),
        }

    async def wait_up(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
                try:
                    if (await client.get(self.url + "/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {self.log()}")
                await asyncio.sleep(0.05)

    async def wait_ready(self, want: bool = True, within: float = 30.0) -> float:
        """Polls /readyz until it says `want`; returns how long that took."""
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                try:
                    r = await client.get(self.url + "/readyz")
                    if (r.status_code == 200) == want:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                if time.monotonic() - started > within:
                    raise AssertionError(f"/readyz never said ready={want} in {within} s")
                await asyncio.sleep(0.1)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """Every line of the log, each of which must be one JSON object."""
        records = []
        for line in self.log().splitlines():
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise AssertionError(f"a log line that is not JSON: {line[:200]!r}") from None
            assert isinstance(value, dict), line[:200]
            records.append(value)
        return records

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        self._log.close()
        return self.proc.returncode
