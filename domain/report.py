"""The CCPA regulations §7102 figures for one calendar year: requests to know received, complied
with in whole or in part, and denied, and the median number of days to respond.

dsar takes requests to know (access and portability) only: requests to delete and to opt out
are not received through it, so it reports them as not handled rather than as none. A partner's
transfer under a grant is the person's standing instruction, not a request of its own: left out.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from domain.requests import Conn
from stores.scope import Scope, scoped

NOT_HANDLED = "not received through dsar"


@dataclass(frozen=True, slots=True)
class Figures:
    year: int
    received: int
    complied: int  # completed: in whole or in part (held-back parts still count as part)
    denied: int
    open: int
    median_days: float | None  # received to completed or denied, in days

    def as_json(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "requests_to_know": {
                "received": self.received,
                "complied_with_in_whole_or_in_part": self.complied,
                "denied": self.denied,
                "still_open": self.open,
                "median_days_to_respond": self.median_days,
            },
            "requests_to_delete": NOT_HANDLED,
            "requests_to_opt_out": NOT_HANDLED,
            "rule": "CCPA regulations § 7102(a)",
        }

    def as_table(self) -> str:
        median = "-" if self.median_days is None else f"{self.median_days:g}"
        rows = [
            (f"CCPA § 7102 metrics, {self.year}", ""),
            ("requests to know received", str(self.received)),
            ("  complied with in whole or in part", str(self.complied)),
            ("  denied", str(self.denied)),
            ("  still open", str(self.open)),
            ("  median days to respond", median),
            ("requests to delete", NOT_HANDLED),
            ("requests to opt out", NOT_HANDLED),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in rows)


async def figures(db: asyncpg.Pool | Conn, year: int) -> Figures:
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    async with scoped(db, scope=Scope.SWEEP) as conn:
        rows = await conn.fetch(
            """SELECT status, received_at, closed_at FROM requests
               WHERE received_at >= $1 AND received_at < $2 AND channel <> 'partner'""",
            start,
            end,
        )
    answered = [r for r in rows if r["status"] in ("completed", "refused")]
    days = [(r["closed_at"] - r["received_at"]).total_seconds() / 86400 for r in answered]
    return Figures(
        year=year,
        received=len(rows),
        complied=sum(r["status"] == "completed" for r in rows),
        denied=sum(r["status"] == "refused" for r in rows),
        open=sum(r["closed_at"] is None for r in rows),
        median_days=round(statistics.median(days), 1) if days else None,
    )
