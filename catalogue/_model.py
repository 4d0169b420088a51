"""The catalogue's shapes: what the privacy policy says, as frozen values the service reads.

Every reference in the TOML file (a category's sources, purposes, recipients…) is resolved to
the `Term` it names at load time, so readers never look a key up again and cannot meet a
dangling one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

# The keys of CONTRACT.md ("Category keys"): clients depend on exactly these.
CATEGORY_KEYS = (
    "profile",
    "identifiers",
    "payment",
    "device",
    "web_analytics",
    "geolocation",
    "recordings",
    "sensitive",
    "provided",
    "professional",
    "preferences",
)
# GDPR Art. 20(1) and Recital 68: portability covers data the subject provided, which the
# EDPB guidelines (WP242) read as including data observed from their use; never inferred data.
ORIGINS = ("provided", "observed", "inferred")
FIELD_TYPES = ("string", "text", "integer", "boolean", "timestamp", "inet", "uuid")
# How a support agent sees a value; "none" shows it as stored.
MASKS = ("none", "email", "phone", "initial", "city_only", "last4", "hidden")
# How dsar tells whether a recipient received a person's data in a period: `continuous` (it
# holds every record for us, such as hosting), `analytics_cookies` / `advertising_cookies`
# (collected through those cookies while the person's choices allowed them), `partner_transfers`
# (the transfers the person authorised, from the audit log), `on_event` (only when an event
# the policy names happens, which dsar does not record).
DISCLOSURES = (
    "continuous",
    "analytics_cookies",
    "advertising_cookies",
    "partner_transfers",
    "on_event",
)
# The jurisdiction of a person whose residence is not known, or matched by no other: the
# stricter rule of each law applies to them.
UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class Term:
    """One entry of a vocabulary: a source, purpose, recipient, legal basis or retention rule."""

    key: str
    title: str
    description: str
    group: str | None = None  # purposes only: the policy's heading above the bullet
    # recipients only: how dsar knows whether a person's data reached them (DISCLOSURES)
    disclosure: str | None = None


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    description: str
    withheld: bool = False  # CCPA regulations §7024(d): held, said to be held, never disclosed
    mask: str = "none"
    values: tuple[str, ...] = ()  # the closed set of values, where the column has one
    # Held although the policy does not name it: why, in words said to the person.
    not_in_policy: str | None = None
    # A withheld item released into this copy by the person's jurisdiction's rule (a copy's
    # own variant of the category, `Category.releasing`); never set in the catalogue.
    released: bool = False
    # Stored values in words, for people (`submit` → "Sent a form"); others show as stored.
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, value: str) -> str:
        return next((words for code, words in self.labels if code == value), value)


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    title: str
    description: str
    origin: str
    sensitive: bool
    paged: bool
    time_field: str | None
    fields: tuple[Field, ...]
    sources: tuple[Term, ...]
    purposes: tuple[Term, ...]
    recipients: tuple[Term, ...]
    shared_with: tuple[Term, ...]
    legal_bases: tuple[Term, ...]
    retention: Term
    # Other names the policy gives this category in its charts and lists.
    policy_names: tuple[str, ...] = ()
    # What the policy says, or does not say, of the category's lawful basis, where its lists
    # of lawful bases do not name the category (then `legal_bases` may be empty).
    legal_bases_note: str | None = None
    # A category the policy does not name: why it is held, in words said to the person.
    not_in_policy: str | None = None

    @property
    def portable(self) -> bool:
        return self.origin != "inferred"

    @property
    def disclosed_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.withheld)

    @property
    def withheld_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.withheld)

    def releasing(self, names: frozenset[str]) -> Category:
        """This category as a copy that releases the withheld fields `names` shows it."""
        if not any(f.withheld and f.name in names for f in self.fields):
            return self
        fields = tuple(
            replace(f, withheld=False, released=True) if f.withheld and f.name in names else f
            for f in self.fields
        )
        return replace(self, fields=fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Contact:
    """The controller, as the policy's "Contact Us" section gives it."""

    name: str
    website: str
    email: str | None  # None until the privacy lead fills it in (see policy.toml)
    address: str
    # The e-mail address is a stand-in for a demonstration, not the company's real one.
    demo_email: bool = False

    @property
    def usable_email(self) -> bool:
        """An address people can write to in production: set, and not the demo stand-in."""
        return self.email is not None and not self.demo_email


@dataclass(frozen=True, slots=True)
class Safeguard:
    """A transfer safeguard (GDPR Art. 15(2)), with the data it covers."""

    key: str
    title: str
    description: str
    covers: str  # which data, in the policy's words
    countries: tuple[str, ...] = ()  # where that data comes from (ISO 3166-1 alpha-2)


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement the policy makes that every copy and statement repeats to the person."""

    key: str
    title: str
    description: str
    jurisdictions: tuple[str, ...] = ()  # to whom it is said; empty: to everyone
    law: str | None = None  # the provision that asks for it

    def said_to(self, jurisdiction: str) -> bool:
        return (
            not self.jurisdictions
            or jurisdiction in self.jurisdictions
            or (jurisdiction == UNKNOWN)
        )


@dataclass(frozen=True, slots=True)
class Representative:
    """A GDPR Art. 27 representative: who people in a region may contact instead of us."""

    key: str
    region: str
    name: str
    attention: str
    address: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Transfers:
    hosted_in: str
    description: str
    safeguards: tuple[Safeguard, ...]
    dispute_resolution: Term

    def safeguards_for(self, country: str | None) -> tuple[Safeguard, ...]:
        """The safeguards that cover the data of a person living in `country`."""
        code = (country or "").strip().upper()
        return tuple(s for s in self.safeguards if code in s.countries)


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    """Whose law applies to a person: the rules that differ by law are chosen by this key."""

    key: str  # GDPR, CCPA, UNKNOWN: stored on the subject (subjects.jurisdiction)
    title: str
    description: str
    # Where a person lives, as the residence fields give it: ISO 3166-1 alpha-2 countries,
    # and (for a country split by law, such as the US) its regions as the stores hold them.
    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    # The [release_rules] entry this law applies to withheld items; None: the CCPA
    # regulations § 7024(d) rule ([withholding]) withholds them all.
    release: str | None = None

    def covers(self, country: str | None, region: str | None) -> bool:
        if country is None or country.strip().upper() not in self.countries:
            return False
        if not self.regions:
            return True
        return region is not None and region.strip().upper() in self.regions


@dataclass(frozen=True, slots=True)
class ReleaseRule:
    """Which withheld items a jurisdiction's law makes part of an access copy (GDPR Art.
    15(3): the values the person gave us), only after the strongest verification; every other
    withheld item keeps its documented exception."""

    key: str
    title: str
    description: str
    release: tuple[tuple[str, str], ...]  # (category, field)
    exceptions: tuple[tuple[str, str, str], ...]  # (category, field, why it stays withheld)

    def fields_of(self, category: str) -> frozenset[str]:
        return frozenset(f for c, f in self.release if c == category)

    def exception(self, category: str, field: str) -> str | None:
        return next((why for c, f, why in self.exceptions if (c, f) == (category, field)), None)


@dataclass(frozen=True, slots=True)
class Residence:
    """Where the stores say a person lives: a category and its country and region fields."""

    category: str
    country: str
    region: str | None


@dataclass(frozen=True, slots=True)
class Choices:
    """Where the stores hold a person's choices: a category and the fields of each choice."""

    category: str
    do_not_sell_or_share: str  # true: opted out of sale and sharing
    advertising_cookies: str  # false: Retargeting/Advertising cookies de-selected
    analytics_cookies: str  # false: Performance/Analytical cookies de-selected
    changed_at: str  # when the choices were last changed


@dataclass(frozen=True, slots=True)
class Right:
    key: str
    title: str
    description: str
    gdpr: str | None  # the GDPR article the right comes from
    ccpa: str | None  # the CCPA right, with its Civil Code section
    # "To exercise the rights described in this Privacy Policy, please contact us": a right
    # exercised by writing to the controller's contact address.
    by_request: bool = False


@dataclass(frozen=True, slots=True)
class Catalogue:
    categories: tuple[Category, ...]
    sources: tuple[Term, ...]
    purposes: tuple[Term, ...]
    recipients: tuple[Term, ...]
    legal_bases: tuple[Term, ...]
    retention: tuple[Term, ...]
    controller: Contact
    representatives: tuple[Representative, ...]
    transfers: Transfers
    rights: tuple[Right, ...]
    non_discrimination: Term
    authorized_agents: Term
    withholding: Term  # the rule withheld fields obey, with its text
    source: str  # the file it was read from
    jurisdictions: tuple[Jurisdiction, ...] = ()
    residence: Residence | None = None
    choices: Choices | None = None
    # "When establishing a retention period …": what decides it where no period is given.
    retention_criteria: Term | None = None
    statements: tuple[Statement, ...] = ()
    release_rules: tuple[ReleaseRule, ...] = ()

    def release_rule(self, jurisdiction: str) -> ReleaseRule | None:
        """The rule that releases withheld items to a person of this jurisdiction, if any."""
        key = self.jurisdiction(jurisdiction).release
        return next((r for r in self.release_rules if r.key == key), None)

    def statement(self, key: str) -> Statement:
        for s in self.statements:
            if s.key == key:
                return s
        raise KeyError(key)

    def jurisdiction(self, key: str) -> Jurisdiction:
        for j in self.jurisdictions:
            if j.key == key:
                return j
        raise KeyError(key)

    def jurisdiction_of(self, country: str | None, region: str | None) -> Jurisdiction | None:
        """The jurisdiction whose countries and regions cover this residence, if any."""
        # Region rules first: California is inside the US, and more precise than it.
        for j in sorted(self.jurisdictions, key=lambda j: not j.regions):
            if j.covers(country, region):
                return j
        return None

    def category(self, key: str) -> Category:
        for c in self.categories:
            if c.key == key:
                return c
        raise KeyError(key)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.categories)

    def __iter__(self) -> Iterator[Category]:
        return iter(self.categories)

    def __len__(self) -> int:
        return len(self.categories)
