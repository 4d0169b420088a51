"""Pure helpers: summaries of repeated measurements, targets, and the Markdown tables.

Nothing here touches a database, a process or the clock, so `tests/test_bench_stats.py` can
check it exactly.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Summary:
    """Min, median and max of one figure over the rounds of a run."""

    n: int
    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no values to summarise")
        return cls(len(values), min(values), statistics.median(values), max(values))

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "min": self.min, "median": self.median, "max": self.max}


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Round by round: each dsar figure against the baseline measured in the same round."""
    if len(numerators) != len(denominators):
        raise ValueError("a ratio needs one baseline per round")
    return [n / d for n, d in zip(numerators, denominators, strict=True)]


@dataclass(frozen=True, slots=True)
class Target:
    """A figure's goal from issue 9, such as `<= 1.3` (a ratio) or `>= 0.5`."""

    op: Literal["<=", ">="]
    limit: float
    unit: str = "x"

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def __str__(self) -> str:
        sign = "≤" if self.op == "<=" else "≥"
        return f"{sign} {fmt(self.limit, self.unit)}"


def fmt(value: float, unit: str) -> str:
    """One figure for a table: ratios with two decimals, the rest with sensible precision."""
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "rps":
        return f"{value:,.0f}/s"
    if unit == "%":
        return f"{value:.0f} %"
    return f"{value:g}{(' ' + unit) if unit else ''}"


def spread(summary: Summary | dict[str, Any], unit: str) -> str:
    """`median (min-max)` in one cell; one value alone when there was one round."""
    s = summary if isinstance(summary, Summary) else Summary(**summary)
    if s.n == 1 or s.min == s.max:
        return fmt(s.median, unit)
    return f"{fmt(s.median, unit)} ({fmt(s.min, unit)} to {fmt(s.max, unit)})"


def verdict(target: Target, value: float) -> str:
    return "met" if target.met(value) else "**missed**"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub table; the first column left-aligned, the others right-aligned (figures)."""
    rows = [list(r) for r in rows]
    for r in rows:
        if len(r) != len(headers):
            raise ValueError("every row needs one cell per header")
    cells = [[c.replace("|", "\\|") for c in r] for r in [list(headers), *rows]]
    # At least three: a delimiter cell needs a hyphen besides its colon.
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        parts = [r[i].ljust(widths[i]) if i == 0 else r[i].rjust(widths[i]) for i in range(len(r))]
        return "| " + " | ".join(parts) + " |"

    rule = ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    return "\n".join([line(cells[0]), "| " + " | ".join(rule) + " |", *map(line, cells[1:])])
