"""Scenario 6: Ethyca Fides's access-package building against dsar's bundle, the same rows.

Both read the demo company's own tables: Fides gets, for every PostgreSQL category, the mapped
SELECT dsar's export runs (`MappedCategory.records_sql`, the person's key values as parameters),
so both sides read the same rows from the same tables with the same columns.

Fides runs in a virtualenv of its own (`bench/.fides-venv`, git-ignored): `ethyca-fides` pins
dozens of packages that must never meet dsar's. Its current release needs Python 3.13. Each
Fides run is a fresh process (`bench/fides_driver.py`), so its peak RSS is that run's.
Interleaved with it, dsar exports the same subject as JSON over HTTP; its server's peak RSS is
read the same way (VmHWM, reset before the export).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from bench._context import Ctx, export, figure, target
from bench._env import ROOT, Subject, person
from bench._stats import Target, ratios
from stores.deployment import database_name
from stores.postgres import PostgresStore

FIDES_VERSION = "2.86.2"
VENV = ROOT / "bench" / ".fides-venv"
DRIVER = ROOT / "bench" / "fides_driver.py"
PATHS = ("memory", "streaming")
FLAT = Target("<=", 1.1)


def _total(got: dict[str, Any]) -> float:
    """Reading the rows plus building the package: what a Fides access request does here."""
    return float(got["load_s"] + got["package_s"])


def _first(drivers: dict[tuple[str, str], Any], path: str, s: Subject) -> dict[str, Any]:
    first: dict[str, Any] = drivers[(path, s.handle)].first
    return first


class FidesUnavailable(Exception):
    """Fides cannot be installed or run here; the message says exactly why."""


def _log(msg: str) -> None:
    print(f"  {msg}", flush=True)


def _runs(python: str) -> bool:
    """A pyenv shim is on PATH even where its version is not selected: it must really run."""
    try:
        done = subprocess.run([python, "--version"], capture_output=True, timeout=20)  # noqa: S603  # a Python found on this machine
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _python313() -> str | None:
    candidates = [found for name in ("python3.13", "python3.14") if (found := shutil.which(name))]
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates += [
        str(v / "bin" / "python3")
        for v in sorted(pyenv.glob("3.1[34]*"), reverse=True)
        if (v / "bin" / "python3").exists()
    ]
    return next((c for c in candidates if _runs(c)), None)


def ensure_venv() -> Path:
    """The Fides virtualenv's python, installing `ethyca-fides` first if needed."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import importlib.metadata as m; print(m.version('ethyca-fides'))"]
    if python.exists():
        done = subprocess.run(check, capture_output=True, text=True)  # noqa: S603  # our venv
        if done.returncode == 0 and done.stdout.strip() == FIDES_VERSION:
            return python
    base = _python313()
    if base is None:
        raise FidesUnavailable(
            f"ethyca-fides {FIDES_VERSION} requires Python >= 3.13 and none was found "
            "(python3.13 on PATH or under ~/.pyenv)"
        )
    _log(f"installing ethyca-fides {FIDES_VERSION} into {VENV} (first run only, a few minutes)")
    subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)  # noqa: S603
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)  # noqa: S603
    done = subprocess.run(  # noqa: S603
        [*pip, f"ethyca-fides=={FIDES_VERSION}"], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise FidesUnavailable(f"pip install ethyca-fides failed: {done.stderr.strip()[-800:]}")
    return python


def describe() -> str:
    """The installed Fides and its Python, for RESULTS.md."""
    python = VENV / "bin" / "python"
    if not python.exists():
        return "not installed"
    done = subprocess.run(  # noqa: S603  # our venv
        [str(python), "--version"], capture_output=True, text=True
    )
    return f"{FIDES_VERSION} (its own venv, {done.stdout.strip() or 'Python ?'})"


_PARAMETER = re.compile(r"\$(\d+)")


async def spec(ctx: Ctx, subject: Subject, path: str) -> dict[str, Any]:
    """The person's rows in every PostgreSQL category, read by the mapped SELECT dsar's export
    runs (withheld values only as `…_held` booleans), keyed `database:table` as Fides keys its
    results. The SELECT's `$n` parameters become SQLAlchemy's `:pn`, bound to the same values."""
    bench = ctx.bench
    who = await person(bench.stores, subject.id)
    collections = []
    for cat in bench.catalogue:
        store = bench.stores.store_of(cat.key)
        if not isinstance(store, PostgresStore):
            continue  # Fides reads databases; the media files are left out of both sides' counts
        mapped = store.categories[cat.key]
        if not who.has_all(mapped.keys):
            continue  # no value of a key this category matches on: no records on either side
        args: list[Any] = []
        sql = _PARAMETER.sub(r"(:p\1)", mapped.records_sql(who, args))
        dsn = bench.dsn(store.name)
        collections.append(
            {
                "name": f"{database_name(dsn)}:{mapped.mapped.table}",
                "dsn": dsn,
                "sql": sql,
                "params": {f"p{n}": value for n, value in enumerate(args, 1)},
            }
        )
    return {
        "subject_id": str(subject.id),
        "request_id": f"pri_bench_{subject.handle}",
        "format": "json",
        "path": path,
        "collections": collections,
    }


class Driver:
    """One Fides process for one subject and packaging path; `await round()` runs one round."""

    def __init__(self, python: Path, payload: dict[str, Any]) -> None:
        self.python = python
        self.payload = payload
        self.proc: asyncio.subprocess.Process | None = None
        self.first: dict[str, Any] | None = None  # the first round: its memory is honest

    async def start(self) -> None:
        env = dict(os.environ)
        # Fides looks up an encryption key for the request in Redis (none is set: plain output).
        env.update(
            FIDES__REDIS__HOST=env.get("FIDES__REDIS__HOST", "127.0.0.1"),
            FIDES__REDIS__PASSWORD=env.get("FIDES__REDIS__PASSWORD", ""),
            FIDES__LOGGING__LEVEL="WARNING",
        )
        self.proc = await asyncio.create_subprocess_exec(
            str(self.python),
            str(DRIVER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=str(ROOT / "bench" / ".data"),
            limit=1 << 20,
        )
        await self._send(orjson.dumps(self.payload))
        await self._read()

    async def _send(self, line: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        await self.proc.stdin.drain()

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            if line.startswith(b"{"):
                got: dict[str, Any] = orjson.loads(line)
                return got
        err = b""
        if self.proc.stderr is not None:
            err = await self.proc.stderr.read()
        await self.proc.wait()
        raise FidesUnavailable(
            f"fides_driver exited ({self.proc.returncode}): {err.decode(errors='replace')[-1500:]}"
        )

    async def round(self) -> dict[str, Any]:
        await self._send(b"run")
        got = await self._read()
        if self.first is None:
            self.first = got
        return got

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def run(ctx: Ctx) -> None:
    cfg = ctx.config
    try:
        python = await asyncio.to_thread(ensure_venv)
    except (FidesUnavailable, subprocess.CalledProcessError, OSError) as exc:
        ctx.results["6"] = {"title": "A privacy-request peer: Ethyca Fides", "error": str(exc)}
        _log(f"Fides not run: {exc}")
        return
    fides: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    dsar: dict[str, list[Any]] = defaultdict(list)
    subjects = cfg.fides_subjects
    drivers = {
        (path, s.handle): Driver(python, await spec(ctx, s, path))
        for s in subjects
        for path in PATHS
    }
    try:
        for driver in drivers.values():
            await driver.start()
        for n in range(cfg.rounds):
            for subject in subjects:
                steps = [*PATHS, "dsar"] if n % 2 == 0 else ["dsar", *PATHS]
                for step in steps:
                    if step == "dsar":
                        dsar[subject.handle].append(await export(ctx, subject, "json"))
                    else:
                        got = await drivers[(step, subject.handle)].round()
                        fides[(step, subject.handle)].append(got)
            _log(
                f"round {n + 1}/{cfg.rounds}: "
                + ", ".join(
                    f"{s.handle}: fides {_total(fides[('memory', s.handle)][-1]):.2f} s "
                    f"{fides[('memory', s.handle)][-1]['peak_mb']:.0f} MB, "
                    f"dsar {dsar[s.handle][-1].seconds:.2f} s "
                    f"{dsar[s.handle][-1].peak_rss_mb:.0f} MB"
                    for s in subjects
                )
            )
    except FidesUnavailable as exc:
        ctx.results["6"] = {"title": "A privacy-request peer: Ethyca Fides", "error": str(exc)}
        _log(f"Fides failed: {exc}")
        return
    finally:
        for driver in drivers.values():
            await driver.stop()
    small, large = subjects
    figures: dict[str, Any] = {}
    for s in subjects:
        runs = dsar[s.handle]
        figures[f"dsar.{s.handle}.seconds"] = figure([r.seconds for r in runs], "s", "dsar")
        figures[f"dsar.{s.handle}.peak_mb"] = figure([r.peak_rss_mb for r in runs], "MB", "dsar")
        figures[f"dsar.{s.handle}.growth_mb"] = figure(
            [r.peak_rss_mb - r.rss_before_mb for r in runs], "MB", "dsar"
        )
        for path in PATHS:
            rounds = fides[(path, s.handle)]
            key = f"fides-{path}.{s.handle}"
            figures[f"{key}.seconds"] = figure([_total(g) for g in rounds], "s", "fides")
            figures[f"{key}.load_s"] = figure([g["load_s"] for g in rounds], "s", "fides")
            figures[f"{key}.package_s"] = figure([g["package_s"] for g in rounds], "s", "fides")
            # The first round's memory: later rounds reuse what Python kept from it.
            first = drivers[(path, s.handle)].first
            assert first is not None
            figures[f"{key}.peak_mb"] = figure([first["peak_mb"]], "MB", "fides, first round")
            figures[f"{key}.growth_mb"] = figure(
                [first["peak_mb"] - first["base_mb"]], "MB", "fides, first round"
            )
    targets = [
        target(
            f"dsar server peak RSS, {large.events:,} / {small.events:,} rows",
            FLAT,
            ratios(
                [r.peak_rss_mb for r in dsar[large.handle]],
                [r.peak_rss_mb for r in dsar[small.handle]],
            ),
        )
    ]
    extra = []
    for path in PATHS:
        extra.append(
            figure(
                ratios(
                    [_first(drivers, path, large)["peak_mb"]],
                    [_first(drivers, path, small)["peak_mb"]],
                ),
                "x",
                f"Fides ({path}) peak RSS, {large.events:,} / {small.events:,} rows",
            )
        )
        for s in subjects:
            extra.append(
                figure(
                    ratios(
                        [r.seconds for r in dsar[s.handle]],
                        [_total(g) for g in fides[(path, s.handle)]],
                    ),
                    "x",
                    f"dsar time / Fides ({path}) time, {s.events:,} rows",
                )
            )
    ctx.results["6"] = {
        "title": "A privacy-request peer: Ethyca Fides, an access package of the same rows",
        "subject": f"{small.handle} ({small.events:,} events) and {large.handle} "
        f"({large.events:,} events), every PostgreSQL category of the demo company's own "
        "tables through the same mapped SELECTs, JSON",
        "fides_version": FIDES_VERSION,
        "rows": {s.handle: fides[("memory", s.handle)][-1]["rows"] for s in subjects},
        "bytes": {
            **{
                f"fides-{p}.{s.handle}": fides[(p, s.handle)][-1]["bytes"]
                for p in PATHS
                for s in subjects
            },
            **{f"dsar.{s.handle}": dsar[s.handle][-1].bytes for s in subjects},
        },
        "figures": figures,
        "targets": targets,
        "extra": extra,
    }
