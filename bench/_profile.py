"""Where a process spends its time: py-spy samples of a running server, summarised.

`record()` attaches py-spy to a process we started (by its pid) for as long as the block runs;
`summarise()` turns py-spy's collapsed stacks into the functions that hold the most samples,
by their own time (the frame at the top of the stack) and by their total time (anywhere on it).
py-spy samples only the thread holding the GIL (`--gil`): the profile shows where the server's
Python spends CPU, and the number of samples against the duration shows how busy it was.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# py-spy writes a frame as `function (path/to/file.py:123)`; the line number is dropped so that
# every line of one function counts together.
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>.*?)(?::\d+)?\)$")
_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")
# Frames on nearly every stack of a server (thread and loop start-up, the ASGI layers every
# request passes through, future plumbing): left out of the totals table, which would
# otherwise list only them.
_SCAFFOLDING = (
    "(threading.py)",
    "(asyncio/runners.py)",
    "(asyncio/futures.py)",
    "(concurrent/futures/",
    "(uvicorn/",
    "(starlette/",
    "(anyio/",
    "(api/cli/main.py)",
    "(api/middleware.py)",
    "<module>",
)
RATE = 200
# Parts of the server, by the frames that mark them; a sample counts for a part when any frame of
# its stack matches (so parts can overlap: execution includes the resolvers' database calls).
PARTS: dict[str, tuple[str, ...]] = {
    "GraphQL parsing": ("parse (graphql/language/parser.py)",),
    "GraphQL validation": ("validate (graphql/validation/validate.py)",),
    "GraphQL execution": ("(graphql/execution/",),
    "planned execution": ("(schema/planner.py)",),
    "DataLoader dispatch": ("(strawberry/dataloader.py)",),
    "service database look-ups (row-level security transactions)": (
        "Subjects.for_login (stores/subjects.py",
        "Subjects.anchor_of (stores/subjects.py",
    ),
    "token checks": ("(api/tokens.py)", "(joserfc/"),
    "asyncpg": ("(asyncpg/",),
    "bundle (exporters, stream-zip, isal)": ("(exporters/", "(stream_zip/", "(isal/"),
    "sending the response (uvicorn)": ("RequestResponseCycle.send (uvicorn/protocols/",),
}


@dataclass(frozen=True, slots=True)
class Hot:
    frame: str
    own: float  # share of the samples with this function on top of the stack
    total: float  # share of the samples with this function anywhere on the stack


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = _STDLIB.sub("", m.group("file"))
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group('fn')} ({path})"


def summarise(lines: Iterable[str], top: int = 12) -> tuple[int, list[Hot], list[Hot]]:
    """(samples, hottest by own time, hottest by total time) from collapsed-stack lines."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for raw in lines:
        raw = raw.strip()
        if not raw:
            continue
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [
            _short(f) for f in stack.split(";") if f and not f.startswith(("thread (", "process "))
        ]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    if samples == 0:
        return 0, [], []

    def hot(counter: Counter[str]) -> list[Hot]:
        return [Hot(f, own[f] / samples, total[f] / samples) for f, _ in counter.most_common(top)]

    for f in [f for f in total if any(s in f for s in _SCAFFOLDING)]:
        del total[f]
    return samples, hot(own), hot(total)


def parts(lines: Iterable[str]) -> dict[str, float]:
    """Share of the samples in which each part of `PARTS` is on the stack."""
    hits: Counter[str] = Counter()
    samples = 0
    for raw in lines:
        stack, _, count = raw.strip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_short(f) for f in stack.split(";")]
        samples += int(count)
        for name, marks in PARTS.items():
            if any(m in f for f in frames for m in marks):
                hits[name] += int(count)
    return {name: hits[name] / samples for name in PARTS if hits[name]} if samples else {}


def available() -> str | None:
    """The py-spy executable beside this Python, or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def record(pid: int, out: Path, rate: int = RATE) -> Iterator[None]:
    """Samples process `pid` while the block runs; py-spy writes `out` when it is stopped."""
    exe = available()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log").open("wb")
    argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--gil", "--format", "raw"]
    proc = subprocess.Popen(  # noqa: S603  # our own py-spy, on a pid we started
        [*argv, "-o", str(out)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    time.sleep(0.5)  # attaching takes a moment; the work to profile starts after it
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
