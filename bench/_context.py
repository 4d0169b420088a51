"""What every scenario shares: the run's settings, the opened deployment, the servers, and the
one measured operation of scenarios 1-3, 6 and 7 (an export, downloaded over HTTP).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _client, _procs
from bench._env import DATA, LOGS, ROOT, VENV_BIN, Bench, Subject, extra, heavy
from bench._stats import Summary, Target

PROFILES = DATA / "profiles"


def dsar_server(env: dict[str, str], workers: int = 1) -> _procs.Server:
    """`dsar serve` as `make serve` runs it (DSAR_DEV_ISSUER=1), with the benchmark's own
    DSAR_HOME and DSAR_DATABASE_URL in `env` (bench/_env.py)."""
    port = _procs.free_port()
    argv = [str(VENV_BIN / "dsar"), "serve", "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return _procs.Server(
        "dsar" if workers == 1 else f"dsar --workers {workers}",
        argv,
        env=env,
        port=port,
        log=LOGS / ("dsar.log" if workers == 1 else f"dsar-{workers}.log"),
        ready_path="/readyz",
        cwd=ROOT,
    )


@dataclass(frozen=True, slots=True)
class Config:
    quick: bool
    rounds: int
    events: int
    load_seconds: float
    connections: int = 16
    only: frozenset[int] = frozenset(range(1, 11))

    @property
    def large(self) -> Subject:
        return heavy(self.events)

    @property
    def small(self) -> Subject:
        return extra("bench-100k-1", 100_000)

    @property
    def export_subject(self) -> Subject:
        """Scenarios 1-3: the heavy subject; in quick mode the 100k one (the 1M one is still
        exported for the memory figures)."""
        return self.small if self.quick else self.large

    @property
    def rss_rounds(self) -> int:
        return 1 if self.quick else 3

    @property
    def fides_subjects(self) -> tuple[Subject, Subject]:
        if self.quick:
            return extra("bench-10k", 10_000), self.small
        return self.small, self.large

    @property
    def load_subjects(self) -> list[Subject]:
        """Scenario 7: four subjects (one running export per subject is dsar's rule)."""
        if self.quick:
            return [extra(f"bench-100k-{n}", 100_000) for n in range(1, 5)]
        return [self.large] + [extra(f"bench-1m-{n}", self.events) for n in range(2, 5)]

    def subjects(self) -> list[Subject]:
        wanted = {self.large, self.small, *self.fides_subjects}
        if 7 in self.only:
            wanted.update(self.load_subjects)
        return sorted(wanted, key=lambda s: (s.events, s.handle))


@dataclass(slots=True)
class Ctx:
    config: Config
    bench: Bench
    dsar: _procs.Server
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.dsar.pid

    def pg_cpu(self) -> float | None:
        """PostgreSQL's CPU seconds so far (all backends), when we know its postmaster."""
        pid = self.bench.postmaster
        return None if pid is None else _procs.tree_cpu_seconds(pid)


@dataclass(frozen=True, slots=True)
class Exported:
    """One export of one subject, requested and downloaded, as the server saw it."""

    seconds: float
    first_byte_s: float
    headers_s: float
    bytes: int
    rss_before_mb: float
    peak_rss_mb: float  # the server's VmHWM during the download (reset just before)
    cpu_s: float  # CPU time the server process used during it
    pg_cpu_s: float | None  # CPU time PostgreSQL used during it (embedded server only)


async def export(ctx: Ctx, subject: Subject, fmt: str) -> Exported:
    token = ctx.bench.token(subject.handle)
    url = await _client.request_export(ctx.dsar.url, token, fmt)
    pid = ctx.pid
    before = _procs.rss_mb(pid)
    _procs.reset_peak(pid)
    pg = ctx.pg_cpu()
    cpu = _procs.cpu_seconds(pid)
    got = await _client.download(url, token)
    cpu = _procs.cpu_seconds(pid) - cpu
    pg_after = ctx.pg_cpu()
    if not got.complete:
        raise RuntimeError(f"export of {subject.handle} ({fmt}) incomplete: HTTP {got.status}")
    return Exported(
        got.total_s,
        got.first_byte_s,
        got.headers_s,
        got.bytes,
        before,
        _procs.peak_rss_mb(pid),
        cpu,
        None if pg is None or pg_after is None else pg_after - pg,
    )


def figure(values: list[float], unit: str, label: str) -> dict[str, Any]:
    return {"label": label, "unit": unit, **Summary.of(values).as_dict(), "values": values}


def target(
    label: str, t: Target, values: list[float], note: str = "", *, on: str = "median"
) -> dict[str, Any]:
    """A figure checked against its target from issue 9: on the median of the rounds, or on
    the worst of them (`on="max"`, for a ceiling such as memory)."""
    s = Summary.of(values)
    return {
        "label": label,
        "target": str(t),
        "op": t.op,
        "limit": t.limit,
        "unit": t.unit,
        **s.as_dict(),
        "values": values,
        "on": on,
        "met": t.met(s.max if on == "max" else s.median),
        "note": note,
    }


def now() -> float:
    return time.perf_counter()


def profile_path(name: str) -> Path:
    return PROFILES / f"{name}.txt"
