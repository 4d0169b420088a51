"""`dsar requests list [--overdue]` and `dsar report metrics --year YYYY [--json]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from api.cli._common import CommandError
from api.settings import Settings
from domain import report, requests


def add_requests_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rq = sub.add_parser("requests", help="the requests of people for their data")
    rqs = rq.add_subparsers(dest="requests", required=True)
    ls = rqs.add_parser("list", help="requests by the date they are due, earliest first")
    ls.add_argument("--overdue", action="store_true", help="only open requests past their date")
    rp = sub.add_parser("report", help="reports on requests")
    rps = rp.add_subparsers(dest="report", required=True)
    mt = rps.add_parser("metrics", help="the CCPA § 7102 figures of one calendar year")
    mt.add_argument("--year", type=int, required=True)
    mt.add_argument("--json", action="store_true", help="JSON instead of a table")


def _run(settings: Settings, work: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(settings.locate().service_dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except asyncpg.UndefinedTableError:
        raise CommandError("the service database has no requests: run `dsar migrate`") from None
    except asyncpg.PostgresError as exc:
        raise CommandError(f"the service database failed with SQLSTATE {exc.sqlstate}") from None


def cmd_requests(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> tuple[list[requests.RequestRow], datetime]:
        return await requests.listed(conn, only_overdue=args.overdue), await conn.fetchval(
            "SELECT now()"
        )

    rows, now = _run(settings, work)
    head = ("id", "channel", "kind", "status", "law", "received", "due", "overdue")
    lines = [head]
    for r in rows:
        lines.append(
            (
                str(r.id),
                r.channel,
                r.kind,
                r.status,
                r.jurisdiction,
                _date(r.received_at),
                _date(r.deadline) + (" (extended)" if r.extended_to else ""),
                "OVERDUE" if r.overdue_at(now) else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    print(f"{len(rows)} request(s)", file=sys.stderr)
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    if not 2000 <= args.year <= 9998:
        raise CommandError("--year is a calendar year such as 2026")
    figures: report.Figures = _run(settings, lambda conn: report.figures(conn, args.year))
    if args.json:
        print(orjson.dumps(figures.as_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(figures.as_table())
    return 0


def _date(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
