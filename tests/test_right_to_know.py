"""The right-to-know statement is made from the catalogue and what is held, nothing else."""

import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue

RTK = """{ me { rightToKnow {
  categories { records disclosedLast12Months soldOrSharedLast12Months
    category { key title sources { key } purposes { key } recipients { key }
               sharedWith { key } legalBases { key } retention { key } } }
  transfers safeguards { title } rights { key gdpr } withholdingRule
  controller { name representatives }
} withheld { category field kind rule } } }"""


async def rtk(client: httpx.AsyncClient, issuer: DevIssuer, who: str) -> dict:  # type: ignore[type-arg]
    r = await client.post(
        "/graphql",
        json={"query": RTK},
        headers={"Authorization": f"Bearer {issuer.mint('customer', who)}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]["me"]  # type: ignore[no-any-return]


async def test_statement_matches_the_catalogue(
    client: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    me = await rtk(client, issuer, "alice")
    statement = me["rightToKnow"]
    assert [c["category"]["key"] for c in statement["categories"]] == list(catalogue.keys)
    for held in statement["categories"]:
        cat = catalogue.category(held["category"]["key"])
        got = held["category"]
        assert [t["key"] for t in got["sources"]] == [t.key for t in cat.sources]
        assert [t["key"] for t in got["purposes"]] == [t.key for t in cat.purposes]
        assert [t["key"] for t in got["recipients"]] == [t.key for t in cat.recipients]
        assert [t["key"] for t in got["sharedWith"]] == [t.key for t in cat.shared_with]
        assert [t["key"] for t in got["legalBases"]] == [t.key for t in cat.legal_bases]
        assert got["retention"]["key"] == cat.retention.key
        assert held["records"] > 0
        assert held["soldOrSharedLast12Months"] == bool(cat.shared_with)
    assert {r["key"] for r in statement["rights"]} >= {
        "access",
        "portability",
        "rectification",
        "erasure",
        "complaint",
    }
    assert any("Data Privacy Framework" in s["title"] for s in statement["safeguards"])
    assert "United States" in statement["transfers"]
    assert len(statement["controller"]["representatives"]) == 2


async def test_categories_not_held_are_left_out(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    # dave has only a profile, identifiers and preferences.
    me = await rtk(client, issuer, "dave")
    keys = {c["category"]["key"] for c in me["rightToKnow"]["categories"]}
    assert keys == {"profile", "identifiers", "preferences"}


async def test_withheld_items_are_named_never_shown(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    carol = await rtk(client, issuer, "carol")
    items = {(w["category"], w["field"], w["kind"]) for w in carol["withheld"]}
    assert ("sensitive", "value", "ssn") in items
    assert ("payment", "account_number", None) in items
    assert ("identifiers", "security_answer_hash", None) in items
    assert all("7024(d)" in w["rule"] for w in carol["withheld"])
    bob = await rtk(client, issuer, "bob")
    assert not any(w["category"] == "sensitive" for w in bob["withheld"])
