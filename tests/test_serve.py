"""`dsar serve` as a person runs it: two on one home, the banner's commands pasted into a shell,
the README's commands, and a stop by SIGTERM. A real embedded PostgreSQL under a fresh home."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psutil  # type: ignore[import-untyped]  # types-psutil is not installed
import pytest

from stores.embedded import postmaster_pid

REPO = Path(__file__).resolve().parent.parent
_SERVING = re.compile(r"dsar is serving on http://127\.0\.0\.1:(?P<port>[0-9]+)")


def serve_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DSAR_DATABASE_URL", "DSAR_STORES"}}
    return {**env, "DSAR_HOME": str(home), "DSAR_DEV_ISSUER": "1"}


@dataclass
class Serve:
    process: subprocess.Popen[str]
    port: int
    banner: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(home: Path, port: int = 0, *args: str, wait: bool = True) -> Serve:
    """`dsar serve --port PORT`; 0 (a free port, as `dsar serve` takes it: no other process
    can take it between a test choosing it and the server binding it) reads it from the banner."""
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), *args],
        cwd=REPO,
        env=serve_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    serve = Serve(process, port, [])
    if not wait:
        return serve
    assert process.stdout is not None
    deadline = time.monotonic() + 240
    for line in process.stdout:
        serve.banner.append(line.rstrip("\n"))
        if line.startswith("  stop:"):
            break
        assert time.monotonic() < deadline, "dsar serve did not print its banner"
    serving = [m for line in serve.banner if (m := _SERVING.search(line))]
    if not serving:
        process.kill()
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"no banner: {serve.banner!r}; stderr: {err[-3000:]}")
    serve.port = int(serving[0]["port"])
    assert port in (0, serve.port)
    # The banner comes only once the server answers.
    assert httpx.get(f"{serve.url}/healthz").status_code == 200
    return serve


def stop(serve: Serve) -> tuple[int, str]:
    serve.process.send_signal(signal.SIGTERM)
    _, err = serve.process.communicate(timeout=60)
    return serve.process.returncode, err


def postmaster(home: Path) -> int | None:
    return postmaster_pid(home / "pg")


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """A home of its own, outside pytest's temporary folders: another pytest run on this
    machine prunes those, and this one holds a live database for the whole module."""
    folder = Path(tempfile.mkdtemp(prefix="dsar-serve-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def first(home: Path) -> Iterator[Serve]:
    serve = start(home)
    yield serve
    if serve.process.poll() is None:
        stop(serve)


def test_a_second_serve_on_a_busy_port_stops_before_touching_anything(
    first: Serve, home: Path
) -> None:
    pid_before = postmaster(home)
    second = start(home, first.port, wait=False)
    out, err = second.process.communicate(timeout=60)
    assert second.process.returncode == 2
    assert err.strip().splitlines() == [
        f"dsar serve: port {first.port} on 127.0.0.1 is already in use (is another dsar serve "
        "running?); stop that one, or choose another port with --port"
    ]
    assert "serving" not in out
    after = postmaster(home)
    assert pid_before is not None and after == pid_before
    assert httpx.get(f"{first.url}/readyz").status_code == 200


def test_a_second_serve_on_the_same_home_leaves_the_first_one_serving(
    first: Serve, home: Path
) -> None:
    second = start(home)
    assert httpx.get(f"{second.url}/readyz").status_code == 200
    code, err = stop(second)
    assert code == 128 + signal.SIGTERM
    assert "dsar stopped" in err and "PostgreSQL" not in err  # not its server to stop
    assert httpx.get(f"{first.url}/readyz").status_code == 200
    page = httpx.get(f"{first.url}/account")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_the_front_door_leads_to_the_account_page(first: Serve) -> None:
    answer = httpx.get(f"{first.url}/", follow_redirects=True)
    assert answer.status_code == 200
    assert str(answer.url) == f"{first.url}/account"
    assert "Sign in" in answer.text


def test_what_starting_made_is_out_of_the_collectors_reach(first: Serve) -> None:
    """`dsar serve` freezes what its start made (api/server.py): a full collection no longer
    walks the modules, the schema and the catalogue (80 to 170 ms with the loop stopped)."""
    text = httpx.get(f"{first.url}/metrics").text
    frozen = re.search(r"^dsar_gc_frozen_objects (\S+)$", text, re.M)
    assert frozen is not None and float(frozen.group(1)) > 50_000, text[:2000]
    full = re.search(r'^dsar_gc_collections_total\{generation="2"\} (\S+)$', text, re.M)
    assert full is not None


def _shell(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A command as pasted into the shell `make serve` was started from (the repository)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DSAR_")}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_command_the_banner_prints_works_when_pasted(first: Serve, home: Path) -> None:
    printed = {
        m.group(1): m.group(2) for line in first.banner if (m := re.match(r"  (\w+): +(.*)", line))
    }
    assert set(printed) >= {"health", "account", "graphiql", "token", "query", "partner", "stop"}
    health, ready = printed["health"].split("   ready: ")
    for command, key, value in ((health, "status", "alive"), (ready, "ready", True)):
        result = _shell(command)
        assert result.returncode == 0, (command, result.stderr)
        assert orjson.loads(result.stdout)[key] == value
    account = printed["account"].split()[0]
    assert httpx.get(account).status_code == 200
    graphiql = printed["graphiql"].split()[0]
    assert httpx.get(graphiql, headers={"accept": "text/html"}).status_code == 200
    # The token and the query, pasted one after the other into one shell.
    result = _shell(printed["token"] + "\n" + printed["query"])
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["data"]["me"]["profile"]["firstName"]
    partner = printed["partner"].split("   (")[0]
    result = _shell(partner)
    assert result.returncode == 0 and result.stdout.startswith("eyJ"), result.stderr
    assert printed["stop"] == f"Ctrl-C here, or kill {first.process.pid}"


def _readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def test_every_command_the_readme_prints_works_when_pasted(
    first: Serve, home: Path, tmp_path: Path
) -> None:
    blocks = _readme_blocks()
    assert blocks[0].startswith("make serve")  # the two commands: this test runs the first
    assert len(blocks) >= 4
    for block in blocks[1:]:
        # The README speaks of a server on port 8000 and the home `make serve` uses.
        command = block.replace("127.0.0.1:8000", f"127.0.0.1:{first.port}").replace(
            "localhost:8000", f"127.0.0.1:{first.port}"
        )
        # Its home stands in for ./.dsar, the one `make serve` makes.
        result = _shell(command, DSAR_HOME=str(home), TMPDIR=str(tmp_path))
        assert result.returncode == 0, (block, result.stderr)
        assert '"errors"' not in result.stdout, (block, result.stdout)
    assert not (REPO / "alice.zip").exists()


def test_workers_serve_as_several_processes_and_stop_together(first: Serve, home: Path) -> None:
    """`--workers 2`: two processes answer on one port; SIGTERM stops them both (and leaves
    the embedded PostgreSQL the first serve started, and that serve, alone)."""
    serve = start(home, 0, "--workers", "2", "--no-seed")
    try:
        assert any("2 processes" in line for line in serve.banner), serve.banner
        workers = psutil.Process(serve.process.pid).children()
        assert len(workers) == 2, workers
        with httpx.Client(base_url=serve.url) as client:
            assert all(client.get("/readyz").status_code == 200 for _ in range(10))
    finally:
        code, err = stop(serve)
    assert code == 128 + signal.SIGTERM, err[-2000:]
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    assert "Traceback" not in err and "failed" not in err
    assert "(and the embedded PostgreSQL it started)" not in err
    assert httpx.get(f"{first.url}/healthz").status_code == 200


def test_sigterm_stops_the_server_and_the_embedded_postgresql_it_started(
    first: Serve, home: Path
) -> None:
    pid = postmaster(home)
    assert pid is not None
    code, err = stop(first)
    assert code == 128 + signal.SIGTERM
    assert "dsar stopped (and the embedded PostgreSQL it started)" in err
    assert not psutil.pid_exists(pid) and postmaster(home) is None
    assert "Traceback" not in err


def test_links_point_where_it_serves_unless_told_otherwise() -> None:
    """Without DSAR_PUBLIC_URL the links in e-mails point where `dsar serve` listens (a second
    one on --port 8001, or --port 0, sent them to 8000); with it, there."""
    from api.cli.serve import served
    from api.settings import Settings

    plain = Settings.from_env({})
    assert served(plain, "127.0.0.1", 8001).public_url == "http://127.0.0.1:8001"
    assert served(plain, "::1", 8002).public_url == "http://[::1]:8002"
    every = "0.0.0.0"  # noqa: S104  # every address, as a container serves
    assert served(plain, every, 8003).public_url == "http://127.0.0.1:8003"
    told = Settings.from_env({"DSAR_PUBLIC_URL": "https://privacy.example.com/"})
    assert served(told, "0.0.0.0", 8001).public_url == "https://privacy.example.com"  # noqa: S104  # the address a container serves on
