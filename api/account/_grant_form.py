"""The grant form of the partner section: what was sent, its checks, and its dates.

A date input gives a day; the grant ends at the last second of that day in UTC, which the page
says next to the field. Each problem is worded to say how to put it right (WCAG 2.1 SC 3.3.3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from api.account._partners import PartnerView
from api.account.web import first
from domain.portability import DEFAULT_GRANT_DAYS, MAX_GRANT_DAYS

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Choice:
    """What the person asked for, as sent; kept in the session across a step-up."""

    partner: str
    categories: tuple[str, ...]
    expires: str  # a date, YYYY-MM-DD: the grant ends at the end of that day (UTC)

    @classmethod
    def of(cls, fields: Mapping[str, list[str]]) -> Choice:
        return cls(
            first(fields, "partner") or "",
            tuple(dict.fromkeys(fields.get("categories", []))),
            (first(fields, "expires") or "").strip(),
        )


def expiry_range(now: datetime) -> dict[str, str]:
    today = now.astimezone(UTC).date()
    return {
        "min": today.isoformat(),
        "max": (today + timedelta(days=MAX_GRANT_DAYS)).isoformat(),
        "default": (today + timedelta(days=DEFAULT_GRANT_DAYS)).isoformat(),
        "max_days": str(MAX_GRANT_DAYS),
    }


def check(choice: Choice, partner: PartnerView, now: datetime) -> dict[str, str]:
    """The form's problems, by field, in words that say how to put them right."""
    errors: dict[str, str] = {}
    allowed = {c.key for c in partner.categories}
    if not choice.categories:
        errors["categories"] = f"Choose at least one kind of data {partner.name} may receive."
    elif not set(choice.categories) <= allowed:
        errors["categories"] = f"Choose only among the kinds of data {partner.name} may receive."
    today = now.astimezone(UTC).date()
    last = today + timedelta(days=MAX_GRANT_DAYS)
    day = _day(choice.expires)
    if day is None:
        errors["expires"] = "Enter the end date as year-month-day, for example " + (
            f"{today + timedelta(days=DEFAULT_GRANT_DAYS)}."
        )
    elif not today <= day <= last:
        errors["expires"] = (
            f"Choose an end date from today, {today:%-d %B %Y}, to {last:%-d %B %Y} "
            f"({MAX_GRANT_DAYS} days from today)."
        )
    return errors


def expires_at(day: str, now: datetime) -> datetime:
    """The last second of that day in UTC (shown as "23:59 UTC" on the day the person chose),
    but never past the longest grant allowed, which the last day always is by a few hours."""
    parsed = _day(day)
    assert parsed is not None
    end = datetime.combine(parsed, time(23, 59, 59), UTC)
    return min(end, now + timedelta(days=MAX_GRANT_DAYS))


def _day(value: str) -> date | None:
    if not _DAY.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def pending(value: Mapping[str, object]) -> Choice | None:
    """A choice kept in the session across a step-up, as it was stored (or None if altered)."""
    partner, categories, day = value.get("partner"), value.get("categories"), value.get("expires")
    if not isinstance(partner, str) or not isinstance(day, str) or not isinstance(categories, list):
        return None
    return Choice(partner, tuple(str(c) for c in categories), day)
