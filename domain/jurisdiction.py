"""Whose law applies to a person: settled from the stores and the person's own declaration.

The catalogue lists the jurisdictions (`[jurisdictions]`: GDPR, CCPA, UNKNOWN) and where the
stores say a person lives (`[residence]`: the profile's country and region). The result is
recorded on the subject (subjects.jurisdiction), so every rule that differs by law (what an
access copy withholds, which statements are made, a request's deadline) reads one value.

When nothing says where the person lives, when the place is covered by no jurisdiction, or when
the person's declaration and the stores disagree, the person is UNKNOWN and the stricter rule of
each law applies: a declaration alone never loosens what the company's own records say.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from catalogue import UNKNOWN, Catalogue
from domain.errors import Refused
from stores.registry import Stores


class UnknownJurisdiction(Refused):
    """A declared jurisdiction the catalogue does not list."""


@dataclass(frozen=True, slots=True)
class Settled:
    key: str
    source: str  # unknown, stores, declared or conflict
    country: str | None = None  # where the stores say the person lives


def combine(from_stores: str | None, declared: str | None) -> Settled:
    """The rule: one side alone decides; both agreeing decide; disagreement is UNKNOWN."""
    if from_stores is None and declared is None:
        return Settled(UNKNOWN, "unknown")
    if declared is None:
        assert from_stores is not None
        return Settled(from_stores, "stores")
    if from_stores is None:
        return Settled(declared, "declared")
    if from_stores == declared:
        return Settled(declared, "stores")
    return Settled(UNKNOWN, "conflict")


def check_declared(catalogue: Catalogue, declared: str | None) -> str | None:
    """A declaration as a key (None: nothing declared; UNKNOWN declares nothing either)."""
    if declared is None or declared == UNKNOWN:
        return None
    if declared not in {j.key for j in catalogue.jurisdictions}:
        known = ", ".join(j.key for j in catalogue.jurisdictions)
        raise UnknownJurisdiction(f"Unknown jurisdiction (known: {known}).")
    return declared


async def from_stores(
    stores: Stores, catalogue: Catalogue, subject_id: UUID
) -> tuple[str | None, str | None]:
    """What the stores say, and the country: (None, None) when they hold no residence for the
    person, UNKNOWN for a place no jurisdiction covers."""
    residence = catalogue.residence
    if residence is None:
        return None, None
    person = await stores.person_of(subject_id, all_keys=False)
    if person is None:
        return None, None
    row = await stores.single(residence.category, person)
    country = None if row is None else row.get(residence.country)
    if not isinstance(country, str) or not country.strip():
        return None, None
    region = row.get(residence.region) if row is not None and residence.region else None
    found = catalogue.jurisdiction_of(country, region if isinstance(region, str) else None)
    return (UNKNOWN if found is None else found.key), country.strip().upper()


async def settle(
    stores: Stores, catalogue: Catalogue, subject_id: UUID, declared: str | None = None
) -> Settled:
    """Settles and records the subject's jurisdiction; `declared` is what the person said when
    asking (kept for later settlements). Raises `UnknownJurisdiction` for a key not listed."""
    declared = check_declared(catalogue, declared)
    recorded = await stores.subjects.jurisdiction(subject_id)
    if declared is None and recorded is not None:
        declared = recorded.declared
    said, country = await from_stores(stores, catalogue, subject_id)
    settled = combine(said, declared)
    await stores.subjects.record_jurisdiction(subject_id, settled.key, settled.source, declared)
    return Settled(settled.key, settled.source, country)
