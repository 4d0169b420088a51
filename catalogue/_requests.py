"""Reading `requests.toml`: the deadlines the law sets for a request, per jurisdiction."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ._reader import CatalogueError, Reader, Table

# The same shape as policy.toml's jurisdiction keys (and the subjects.jurisdiction column).
_JURISDICTION = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
UNITS = ("months", "days", "business_days")
_MOST = 366


@dataclass(frozen=True, slots=True)
class Period:
    """A span of time the law counts in one unit (`UNITS`)."""

    unit: str
    count: int


@dataclass(frozen=True, slots=True)
class Deadline:
    """How long a jurisdiction's law gives to answer, and by how much it may be extended.
    `stricter_of` names other jurisdictions whose earliest dates apply instead."""

    jurisdiction: str
    law: str
    respond: Period | None
    extend: Period | None
    stricter_of: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Review:
    """Categories held back from a copy on some channels until privacy staff approve them."""

    categories: tuple[str, ...]
    channels: tuple[str, ...]
    reason: str


CHANNELS = ("account", "support", "public_form", "agent", "cli", "partner")


@dataclass(frozen=True, slots=True)
class RequestRules:
    acknowledge: Period
    acknowledge_law: str
    deadlines: dict[str, Deadline]
    review: Review = Review((), (), "")

    def held(self, channel: str, categories: tuple[str, ...] | list[str]) -> list[str]:
        """Which of `categories` wait for review on `channel`."""
        if channel not in self.review.channels:
            return []
        return [c for c in categories if c in self.review.categories]

    def deadline(self, jurisdiction: str) -> Deadline:
        """The deadline of `jurisdiction`; an unknown one takes UNKNOWN's (the stricter)."""
        return self.deadlines.get(jurisdiction) or self.deadlines["UNKNOWN"]


def load_request_rules(path: Path | None = None) -> RequestRules:
    """The rules in `path`, or the ones packaged with the service; `CatalogueError` if bad."""
    if path is None:
        packaged = resources.files("catalogue").joinpath("requests.toml")
        return _parse(packaged.read_text(encoding="utf-8"), str(packaged))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(path, f"cannot be read ({type(exc).__name__})") from exc
    return _parse(text, str(path))


def _parse(text: str, source: str) -> RequestRules:
    r = Reader(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(source, f"is not valid TOML: {exc}") from exc
    top = r.table(data, "the file", required=("acknowledge", "deadlines"), optional=("review",))
    ack = r.table(top["acknowledge"], "[acknowledge]", required=("law", "period"))
    raw = top["deadlines"]
    if not isinstance(raw, dict) or not raw:
        r.fail("[deadlines] must be a table of jurisdictions")
    deadlines: dict[str, Deadline] = {}
    for key, value in raw.items():
        if not _JURISDICTION.fullmatch(key):
            r.fail(f"jurisdiction '{key}' is not a valid key (upper case letters, digits, '_')")
        deadlines[key] = _deadline(r, key, value)
    if "UNKNOWN" not in deadlines:
        r.fail("[deadlines] has no UNKNOWN: a person whose jurisdiction is not known needs one")
    for d in deadlines.values():
        for other in d.stricter_of:
            if other not in deadlines or deadlines[other].stricter_of:
                r.fail(
                    f"[deadlines.{d.jurisdiction}] stricter_of names '{other}', which is not a "
                    "jurisdiction with periods of its own"
                )
    review = Review((), (), "")
    if "review" in top:
        t = r.table(top["review"], "[review]", required=("categories", "channels", "reason"))
        channels = r.texts(t, "channels", "[review]")
        if not set(channels) <= set(CHANNELS):
            r.fail(f"[review] channels must be some of {', '.join(CHANNELS)}")
        review = Review(
            r.texts(t, "categories", "[review]"), channels, r.text(t, "reason", "[review]")
        )
    return RequestRules(
        acknowledge=_period(r, ack["period"], "[acknowledge] period"),
        acknowledge_law=r.text(ack, "law", "[acknowledge]"),
        deadlines=deadlines,
        review=review,
    )


def _deadline(r: Reader, key: str, value: object) -> Deadline:
    where = f"[deadlines.{key}]"
    t: Table = r.table(
        value, where, required=("law",), optional=("respond", "extend", "stricter_of")
    )
    stricter = r.texts(t, "stricter_of", where)
    if stricter and ("respond" in t or "extend" in t):
        r.fail(f"{where}: give either 'stricter_of' or 'respond' and 'extend', not both")
    if not stricter and ("respond" not in t or "extend" not in t):
        r.fail(f"{where}: needs 'respond' and 'extend' (or 'stricter_of')")
    return Deadline(
        jurisdiction=key,
        law=r.text(t, "law", where),
        respond=None if stricter else _period(r, t["respond"], f"{where} respond"),
        extend=None if stricter else _period(r, t["extend"], f"{where} extend"),
        stricter_of=stricter,
    )


def _period(r: Reader, value: object, where: str) -> Period:
    t = r.table(value, where, optional=UNITS)
    if len(t) != 1:
        r.fail(f"{where} must name exactly one of {', '.join(UNITS)}")
    ((unit, count),) = t.items()
    if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= _MOST:
        r.fail(f"{where}: {unit} must be a whole number from 1 to {_MOST}")
    return Period(unit, count)
