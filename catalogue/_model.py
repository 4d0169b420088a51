"""The catalogue's shapes: what the privacy policy says, as frozen values the service reads.

Every reference in the TOML file (a category's sources, purposes, recipients…) is resolved to
the `Term` it names at load time, so readers never look a key up again and cannot meet a
dangling one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    description: str
    withheld: bool = False  # CCPA regulations §7024(d): held, said to be held, never disclosed
    mask: str = "none"
    values: tuple[str, ...] = ()  # the closed set of values, where the column has one


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

    @property
    def portable(self) -> bool:
        return self.origin != "inferred"

    @property
    def disclosed_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.withheld)

    @property
    def withheld_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.withheld)

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
    safeguards: tuple[Term, ...]
    dispute_resolution: Term


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

    def covers(self, country: str | None, region: str | None) -> bool:
        if country is None or country.strip().upper() not in self.countries:
            return False
        if not self.regions:
            return True
        return region is not None and region.strip().upper() in self.regions


@dataclass(frozen=True, slots=True)
class Residence:
    """Where the stores say a person lives: a category and its country and region fields."""

    category: str
    country: str
    region: str | None


@dataclass(frozen=True, slots=True)
class Right:
    key: str
    title: str
    description: str
    gdpr: str | None  # the GDPR article the right comes from
    ccpa: str | None  # the CCPA right, with its Civil Code section


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
