"""What is true of one person, beside what the policy says of everyone: whose law applies, and
what of their data reached whom in the 12 months before the request.

`domain.disclosures` works these out from the person's recorded choices and the audit log; the
right-to-know statement, `manifest.json` and `index.html` say them. They live here, below the
domain, because the exporters write them into every copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalogue import ReleaseRule, Term


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One recipient of one category: whether it received the person's data in the period.

    `disclosed` is None where dsar holds no record either way (`on_event` recipients)."""

    recipient: Term
    disclosed: bool | None
    note: str
    partners: tuple[str, ...] = ()
    last_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient.key,
            "title": self.recipient.title,
            "disclosed": self.disclosed,
            "note": self.note,
            "partners": list(self.partners),
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class CategoryFacts:
    disclosures: tuple[Disclosure, ...] = ()
    shared: tuple[Disclosure, ...] = ()  # cross-context behavioral advertising ("share")

    @property
    def disclosed(self) -> bool:
        return any(d.disclosed for d in self.disclosures)

    @property
    def sold_or_shared(self) -> bool:
        # Never sold ("We do not sell personal information"): only shared, and only if so.
        return any(d.disclosed for d in self.shared)


@dataclass(frozen=True, slots=True)
class PersonFacts:
    jurisdiction: str  # a catalogue [jurisdictions] key
    jurisdiction_source: str  # stores, declared, conflict or unknown
    country: str | None  # where the stores say the person lives, for the transfer safeguards
    period_from: datetime  # the 12 months before the request
    period_to: datetime
    choices: str  # the person's recorded choices, in words
    categories: Mapping[str, CategoryFacts] = field(default_factory=dict)

    def of(self, key: str) -> CategoryFacts:
        return self.categories.get(key, CategoryFacts())


@dataclass(frozen=True, slots=True)
class Release:
    """What a person's jurisdiction releases into their own access copy (catalogue
    [release_rules]): `fields` per category; empty when the copy was not asked for with the
    strongest verification, which `unverified` then says."""

    rule: ReleaseRule
    fields: Mapping[str, frozenset[str]]
    verification: str
    unverified: str | None = None
