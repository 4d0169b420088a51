"""A person's jurisdiction: catalogue data, recorded on the subject, from the stores or declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue import UNKNOWN, Catalogue, CatalogueError, load_catalogue
from domain.jurisdiction import UnknownJurisdiction, combine, settle
from stores.registry import Stores
from stores.seed import subject_id
from tests._policy import POLICY

PACKAGED = Path(__file__).resolve().parents[1] / "catalogue/policy.toml"


def test_the_catalogue_lists_gdpr_ccpa_and_unknown(catalogue: Catalogue) -> None:
    assert [j.key for j in catalogue.jurisdictions] == ["GDPR", "CCPA", UNKNOWN]
    assert catalogue.jurisdiction_of("us", " ca ").key == "CCPA"  # type: ignore[union-attr]
    assert catalogue.jurisdiction_of("US", "NY") is None
    assert catalogue.jurisdiction_of("US", None) is None
    assert catalogue.jurisdiction_of("DE", None).key == "GDPR"  # type: ignore[union-attr]
    assert catalogue.jurisdiction_of(None, None) is None


def test_gdpr_covers_every_place_the_policy_names(catalogue: Catalogue) -> None:
    text = POLICY.read_text(encoding="utf-8")
    gdpr = catalogue.jurisdiction("GDPR")
    # "European Union (“EU”), United Kingdom (“UK”), Lichtenstein, Norway or Iceland", and the
    # Swiss-U.S. DPF for data received from Switzerland.
    for place, code in (
        ("Lichtenstein", "LI"),
        ("Norway", "NO"),
        ("Iceland", "IS"),
        ("United Kingdom", "GB"),
        ("Switzerland", "CH"),
        ("European Union", "FR"),
    ):
        assert place in text
        assert code in gdpr.countries
    assert "California resident" in text
    assert catalogue.jurisdiction("CCPA").regions == ("CA",)


def test_disagreement_is_the_stricter_unknown() -> None:
    assert combine(None, None) == combine(None, None)
    assert (combine(None, None).key, combine(None, None).source) == (UNKNOWN, "unknown")
    assert (combine("CCPA", None).key, combine("CCPA", None).source) == ("CCPA", "stores")
    assert (combine(None, "GDPR").key, combine(None, "GDPR").source) == ("GDPR", "declared")
    assert combine("GDPR", "GDPR").key == "GDPR"
    assert (combine("CCPA", "GDPR").key, combine("CCPA", "GDPR").source) == (UNKNOWN, "conflict")


UNKNOWN_OK = '[jurisdictions.UNKNOWN]\ntitle = "x"\ndescription = "y"\n'
RESIDENCE_OK = '[residence]\ncategory = "profile"\ncountry = "country"\n'


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (
            '[jurisdictions.gdpr]\ntitle = "x"\ndescription = "y"\n' + UNKNOWN_OK + RESIDENCE_OK,
            "upper case",
        ),
        (
            '[jurisdictions.X]\ntitle = "x"\ndescription = "y"\ncountries = ["de"]\n'
            + UNKNOWN_OK
            + RESIDENCE_OK,
            "alpha-2",
        ),
        (
            '[jurisdictions.UNKNOWN]\ntitle = "x"\ndescription = "y"\ncountries = ["DE"]\n'
            + RESIDENCE_OK,
            "no places",
        ),
        ('[jurisdictions.X]\ntitle = "x"\ndescription = "y"\n' + RESIDENCE_OK, "must define"),
        (UNKNOWN_OK + '[residence]\ncategory = "profile"\ncountry = "nation"\n', "not a field"),
    ],
)
def test_broken_jurisdictions(tmp_path: Path, tail: str, message: str) -> None:
    base = PACKAGED.read_text(encoding="utf-8")
    path = tmp_path / "policy.toml"
    after = base[base.index("\n[residence]\n") + 1 :]
    rest = after[after.index("\n\n") :]  # the sections after [residence], as they are
    rules = base[base.index("[release_rules.gdpr]") : base.index("\n[residence]\n")]
    head = base[: base.index("[jurisdictions.GDPR]")]
    path.write_text(head + tail + "\n" + rules + rest, encoding="utf-8")
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


async def test_recorded_from_the_stores(stores: Stores, catalogue: Catalogue) -> None:
    alice, carol, bob = subject_id("alice"), subject_id("carol"), subject_id("bob")
    assert (await settle(stores, catalogue, alice)).key == "GDPR"
    assert (await settle(stores, catalogue, carol)).key == "CCPA"
    # bob lives in a US state other than California: known, but neither law's place.
    settled = await settle(stores, catalogue, bob)
    assert (settled.key, settled.source) == (UNKNOWN, "stores")
    recorded = await stores.subjects.jurisdiction(alice)
    assert recorded is not None
    assert (recorded.key, recorded.source, recorded.declared) == ("GDPR", "stores", None)
    assert recorded.at is not None


async def test_a_declaration_never_overrides_the_stores(
    stores: Stores, catalogue: Catalogue
) -> None:
    carol = subject_id("carol")
    try:
        settled = await settle(stores, catalogue, carol, declared="GDPR")
        assert (settled.key, settled.source) == (UNKNOWN, "conflict")
        # The declaration is kept: a later settlement without one weighs it again.
        again = await settle(stores, catalogue, carol)
        assert (again.key, again.source) == (UNKNOWN, "conflict")
        with pytest.raises(UnknownJurisdiction):
            await settle(stores, catalogue, carol, declared="MARS")
    finally:
        await stores.subjects.record_jurisdiction(carol, "CCPA", "stores", None)


async def test_declared_where_the_stores_say_nothing(stores: Stores, catalogue: Catalogue) -> None:
    # A subject the company's systems do not know: only the declaration speaks.
    [sid] = await stores.subjects.ids_for(["no-such-user-16"])
    assert (await settle(stores, catalogue, sid)).source == "unknown"
    settled = await settle(stores, catalogue, sid, declared="CCPA")
    assert (settled.key, settled.source) == ("CCPA", "declared")
