"""The dates of a request: when receipt must be confirmed, when the answer is due, and how far
an extension may move it, counted by the catalogue's periods (catalogue/requests.toml).

Counting follows the law's own calendar: from the day the request was received, in the person's
time zone, to the end of the last day (GDPR Art. 12(3) in months as Regulation 1182/71 Art. 3
counts them: the same date, or the month's last day; the CCPA in calendar days, §7021(b), and
business days, §7021(a)). Where a jurisdiction takes the stricter of others, each date is the
earliest of theirs.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalogue import Deadline, Period, RequestRules

UTC_ZONE = "UTC"


@dataclass(frozen=True, slots=True)
class Dates:
    acknowledge_by: datetime
    due_at: datetime
    # The latest date an extension may reach.
    extend_limit: datetime


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone `name`, or UTC when it is missing or not one."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(UTC_ZONE)


def add(day: date, period: Period) -> date:
    if period.unit == "days":
        return day + timedelta(days=period.count)
    if period.unit == "business_days":
        left = period.count
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
        return day
    month0 = day.month - 1 + period.count
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of(day: date, tz: ZoneInfo) -> datetime:
    """The last instant of `day` where the person is."""
    return datetime.combine(day, time.max, tz)


def dates(rules: RequestRules, jurisdiction: str, received_at: datetime, tz_name: str) -> Dates:
    tz = zone(tz_name)
    day = received_at.astimezone(tz).date()
    ack = end_of(add(day, rules.acknowledge), tz)
    own = [_respond(d, day, tz) for d in _laws(rules, rules.deadline(jurisdiction))]
    return Dates(
        acknowledge_by=ack,
        due_at=min(due for due, _ in own),
        extend_limit=min(limit for _, limit in own),
    )


def _laws(rules: RequestRules, deadline: Deadline) -> list[Deadline]:
    if deadline.stricter_of:
        return [rules.deadlines[j] for j in deadline.stricter_of]
    return [deadline]


def _respond(deadline: Deadline, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    assert deadline.respond is not None and deadline.extend is not None  # checked at load
    due = add(day, deadline.respond)
    return end_of(due, tz), end_of(add(due, deadline.extend), tz)
