"""`dsar export` that fails leaves no file, whatever fails, and says so in one plain line:
a folder for a file, a missing folder, a full disk, a store failing half-way, an interrupt."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from api.settings import Settings
from stores.deployment import Deployment
from stores.registry import Stores
from tests._cli import cli_env, run_cli


def env_of(settings: Settings, home: Path, **extra: str) -> dict[str, str]:
    """The test run's databases, the CRM on MySQL included when the run puts it there."""
    mysql = {"DSAR_DEMO_MYSQL_URL": settings.demo_mysql_url} if settings.demo_mysql_url else {}
    return cli_env(settings, home, **mysql, **extra)


def export(out: Path, *extra: str) -> list[str]:
    return ["export", "alice", "--format", "json", "--no-progress", "-o", str(out), *extra]


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Errno" not in lines[0] and "Traceback" not in stderr
    return lines[0]


def test_a_folder_for_the_file_is_refused_before_anything_is_read(
    settings: Settings, stores: Stores, tmp_path: Path
) -> None:
    folder = tmp_path / "copies"
    folder.mkdir()
    result = run_cli(*export(folder), env=env_of(settings, tmp_path / "home"))
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f"dsar export: {folder} is a folder: name the file to write, as {folder / 'copy.zip'}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copies", "home"]
    assert list(folder.iterdir()) == []


def test_a_missing_folder_is_named(settings: Settings, stores: Stores, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "alice.zip"
    result = run_cli(*export(out), env=env_of(settings, tmp_path / "home"))
    assert result.returncode == 2
    assert one_line(result.stderr) == f"dsar export: no such folder: {out.parent}"


def _small_files() -> None:
    # A full disk, as the process sees it: a write past 16 KiB fails (EFBIG; Python ignores
    # SIGXFSZ, so the write returns an error instead of killing the process).
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


def test_a_full_disk_leaves_no_file(settings: Settings, stores: Stores, tmp_path: Path) -> None:
    out = tmp_path / "out" / "alice.zip"
    out.parent.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", *export(out)],
        env={**os.environ, **env_of(settings, tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_small_files,
        check=False,
    )
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f"dsar export: cannot write {out}: File too large; no file was left"
    )
    assert list(out.parent.iterdir()) == []


class Held:
    """`dsar export alice` in a process of its own, held half-way, deterministically: the
    analytics table it reads is locked by this test until the test has done what it came for."""

    def __init__(self, settings: Settings, deployment: Deployment, out: Path) -> None:
        self.dsn = deployment.stores.store("analytics").dsn
        self.argv = [sys.executable, "-m", "api.cli", *export(out)]
        self.env = {**os.environ, **env_of(settings, out.parent.parent / "home")}
        self.part = out.with_name(out.name + ".part")

    async def __aenter__(self) -> Held:
        self.conn = await asyncpg.connect(self.dsn)
        self.lock = self.conn.transaction()
        await self.lock.start()
        await self.conn.execute("LOCK TABLE page_events IN ACCESS EXCLUSIVE MODE")
        self.process = await asyncio.to_thread(
            subprocess.Popen,
            self.argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not (self.part.exists() and await self.waiting()):
            assert self.process.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.02)
        return self

    async def waiting(self) -> list[int]:
        rows = await self.conn.fetch(
            "SELECT pid FROM pg_locks WHERE NOT granted AND relation = 'page_events'::regclass"
        )
        return [r["pid"] for r in rows]

    async def finish(self) -> str:
        _, err = await asyncio.to_thread(self.process.communicate, timeout=60)
        return str(err)

    async def __aexit__(self, *exc: object) -> None:
        await self.lock.rollback()
        await self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
            await asyncio.to_thread(self.process.communicate)


async def test_a_store_failing_half_way_leaves_no_file(
    settings: Settings, deployment: Deployment, stores: Stores, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "alice.zip"
    out.parent.mkdir()
    async with Held(settings, deployment, out) as held:
        for pid in await held.waiting():  # the analytics server drops the export's connection
            await held.conn.execute("SELECT pg_terminate_backend($1)", pid)
        err = await held.finish()
    assert held.process.returncode == 2
    line = one_line(err)
    assert line.startswith("dsar export: a store ") and line.endswith("; no file was left")
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_an_interrupted_export_leaves_no_file(
    settings: Settings, deployment: Deployment, stores: Stores, tmp_path: Path, sig: int
) -> None:
    out = tmp_path / "out" / "alice.zip"
    out.parent.mkdir()
    async with Held(settings, deployment, out) as held:
        held.process.send_signal(sig)
        err = await held.finish()
    assert held.process.returncode in (130, 128 + sig), err
    assert "Traceback" not in err
    assert list(out.parent.iterdir()) == []
