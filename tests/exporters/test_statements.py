"""The person's own copy says what the right-to-know statement says: whose law applies, the
policy's statements (item 6 of issue 16), what reached whom, and how to exercise each right;
`index.html` says it to a person, the manifest to a program. Checked against the policy text."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

import pytest

from catalogue import Catalogue
from domain.disclosures import person_facts
from stores.registry import Stores
from stores.seed import subject_id
from tests.exporters.conftest import Bundle, make_bundle
from tests.test_policy_attachments import POLICY, listed_in_policy, norm, quoted_in_policy

MADE = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def alice_own(stores: Stores, catalogue: Catalogue) -> Bundle:
    sid = subject_id("alice")
    facts = await person_facts(stores, stores.subjects.pool, catalogue, sid, MADE)
    return await make_bundle(stores, catalogue, sid, "json", facts=facts, generated_at=MADE)


def page(b: Bundle) -> str:
    return b.files["index.html"].decode()


async def test_the_manifest_carries_every_statement(
    alice_own: Bundle, catalogue: Catalogue
) -> None:
    m = alice_own.manifest
    assert m["jurisdiction"]["key"] == "GDPR" and m["jurisdiction"]["source"] == "stores"
    assert {s["key"] for s in m["statements"]} == {s.key for s in catalogue.statements}
    text = {s["key"]: s["description"] for s in m["statements"]}
    assert "monetary or other valuable consideration" in text["no_sale"]
    assert "Federal Trade Commission" in text["dpf_liability"]
    assert "binding arbitration" in text["dpf_arbitration"]
    yours = [s["key"] for s in m["transfers"]["safeguards"] if s["covers_yours"]]
    assert yours == ["eu_us_dpf"]
    assert all(s["covers"] for s in m["transfers"]["safeguards"])
    assert m["controller"]["email"] == catalogue.controller.email
    assert m["controller"]["email_is_demo"] is True
    how = {r["key"]: r["how"] for r in m["rights"]}
    assert how["erasure"] == f"By request: write to {catalogue.controller.email}."
    criteria = catalogue.retention_criteria
    assert criteria is not None and m["retention_criteria"]["description"] == criteria.description
    for key, c in m["categories"].items():
        assert c["retention"]["criteria"] == criteria.description, key
        assert c["legal_bases"] or c["legal_bases_note"], key
        assert c["sold_last_12_months"] is False, key
        assert c["shared_last_12_months"] is False, key  # alice opted out long before
    assert m["categories"]["preferences"]["not_in_policy"]
    job = next(f for f in m["categories"]["professional"]["fields"] if f["name"] == "job_title")
    assert "job title" in job["not_in_policy"]
    assert m["period"]["to"] == MADE.isoformat()


async def test_index_html_says_every_statement_to_the_person(
    alice_own: Bundle, catalogue: Catalogue
) -> None:
    html = page(alice_own)
    for s in catalogue.statements:
        assert escape(s.description, quote=True) in html, s.key
    for c in catalogue:
        if c.legal_bases_note:
            assert escape(c.legal_bases_note, quote=True) in html, c.key
        if c.not_in_policy:
            assert escape(c.not_in_policy, quote=True) in html, c.key
    criteria = catalogue.retention_criteria
    assert criteria is not None and escape(criteria.description, quote=True) in html
    assert escape(catalogue.jurisdiction("GDPR").description, quote=True) in html
    email = catalogue.controller.email
    assert f'href="mailto:{email}"' in html and "demonstration address" in html
    assert f"By request: write to {email}." in html
    # The company's website link works: an absolute https link, not a path in the bundle.
    assert f'href="{catalogue.controller.website}"' in html
    assert "Do Not Sell or Share My Personal Information" in html


async def test_every_statement_in_the_copy_is_the_policys(alice_own: Bundle) -> None:
    if not POLICY.is_file():
        pytest.skip("the privacy policy is not beside the checkout")
    policy = norm(POLICY.read_text(encoding="utf-8"))
    m = alice_own.manifest
    said = [s["description"] for s in m["statements"]]
    said += [r["description"] for r in m["rights"]]
    said += [s["description"] for s in m["transfers"]["safeguards"]]
    said += [m["transfers"]["dispute_resolution"]["description"]]
    said += [m["retention_criteria"]["description"], m["non_discrimination"]["description"]]
    wrong = [s for text in said for s in quoted_in_policy(text, policy)]
    # Recipients gather the policy's bullet lists: every item is the policy's.
    for c in m["categories"].values():
        for t in c["recipients"] + c["shared_with"]:
            wrong += listed_in_policy(t["description"], policy)
    assert not wrong, f"said in the copy, not in the policy: {wrong}"
