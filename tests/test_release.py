"""Withholding by jurisdiction (issue 16, item 9): under the GDPR the values a person gave us
are part of their own access copy, after the strongest verification, marked in the manifest;
a California resident's copy keeps the CCPA regulations § 7024(d) rule; password and security
answer hashes stay withheld for everyone, with the documented exception."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import insert_subject
from tests._factories import marked_subject
from tests.test_exports_api import auth, request_export

HOMES = {
    "GDPR": {"country": "FR", "region": "IDF", "city": "Paris"},
    "CCPA": {"country": "US", "region": "CA", "city": "Fresno"},
    "UNKNOWN": {"country": "US", "region": "TX", "city": "Austin"},
}


async def person_in(stores: Stores, catalogue: Catalogue, law: str) -> tuple[str, Any]:
    """A fresh person (a login of their own, government IDs, a refund account) living where
    `law` applies, as the company's profile says."""
    handle = f"rel-{law.lower()}-{uuid4().hex[:8]}"
    data = marked_subject(catalogue, handle, f"R{uuid4().hex[:8]}", 91)
    data.rows["profile"][0].update(HOMES[law])
    await insert_subject(stores, catalogue, data)
    return handle, data


async def own_copy(client: httpx.AsyncClient, issuer: DevIssuer, handle: str) -> zipfile.ZipFile:
    token = issuer.mint("customer", handle)
    _, export = await request_export(client, token)
    r = await client.get(export["downloadUrl"], headers=auth(token))
    assert r.status_code == 200, r.text
    return zipfile.ZipFile(io.BytesIO(r.content))


def everything(z: zipfile.ZipFile) -> bytes:
    return b"\n".join(z.read(n) for n in z.namelist())


async def test_a_gdpr_copy_holds_the_id_numbers_she_gave_a_california_copy_does_not(
    client: httpx.AsyncClient, issuer: DevIssuer, stores: Stores, catalogue: Catalogue
) -> None:
    eu, eu_data = await person_in(stores, catalogue, "GDPR")
    ca, ca_data = await person_in(stores, catalogue, "CCPA")

    z = await own_copy(client, issuer, eu)
    m = orjson.loads(z.read("manifest.json"))
    assert m["jurisdiction"]["key"] == "GDPR"
    ids = orjson.loads(z.read("data/sensitive.json"))
    given = {r["kind"]: r["value"] for r in ids}
    assert given == {r["kind"]: r["value"] for r in eu_data.rows["sensitive"]}
    refund = orjson.loads(z.read("data/payment.json"))[0]
    assert refund["account_number"] == eu_data.rows["payment"][0]["account_number"]
    # Marked in the manifest: each released item, the rule, and the verification it needed.
    released = {(x["category"], x["field"]) for x in m["released"]}
    assert ("sensitive", "value") in released and ("payment", "account_number") in released
    assert all(x["disclosed"] and x["rule"] == "GDPR Art. 15(3)" for x in m["released"])
    assert all("urn:dsar:acr:strong" in x["verification"] for x in m["released"])
    assert m["release_rule"]["applied"] is True
    fields = {f["name"]: f for f in m["categories"]["sensitive"]["fields"]}
    assert fields["value"]["released"] is True and "value_held" not in fields
    # The hashes of secrets stay withheld, with the documented exception.
    kept = {x["field"]: x for x in m["withheld"]}
    assert set(kept) == {"password_hash", "security_answer_hash"}
    assert "one-way hash" in kept["password_hash"]["reason"]
    ident = eu_data.rows["identifiers"][0]
    assert ident["password_hash"].encode() not in everything(z)
    assert ident["security_answer_hash"].encode() not in everything(z)
    assert b"Included for you" in z.read("index.html")

    z = await own_copy(client, issuer, ca)
    m = orjson.loads(z.read("manifest.json"))
    assert m["jurisdiction"]["key"] == "CCPA"
    assert m["released"] == [] and m["release_rule"] is None
    assert all("7024(d)" in x["rule"] for x in m["withheld"])
    body = everything(z)
    for r in ca_data.rows["sensitive"]:
        assert r["value"].encode() not in body
        assert r["value"].replace("-", "").encode() not in body
    assert ca_data.rows["payment"][0]["account_number"].encode() not in body


@pytest.mark.parametrize("fmt", ["CSV"])
async def test_released_values_in_csv_too(
    fmt: str, client: httpx.AsyncClient, issuer: DevIssuer, stores: Stores, catalogue: Catalogue
) -> None:
    eu, eu_data = await person_in(stores, catalogue, "GDPR")
    token = issuer.mint("customer", eu)
    _, export = await request_export(client, token, format=fmt)
    r = await client.get(export["downloadUrl"], headers=auth(token))
    z = zipfile.ZipFile(io.BytesIO(r.content))
    text = z.read("data/sensitive.csv").decode("utf-8-sig")
    assert text.splitlines()[0] == "id,kind,value,collected_at"
    assert eu_data.rows["sensitive"][0]["value"] in text


async def test_unknown_jurisdiction_keeps_the_stricter_rule(
    client: httpx.AsyncClient, issuer: DevIssuer, stores: Stores, catalogue: Catalogue
) -> None:
    tx, data = await person_in(stores, catalogue, "UNKNOWN")
    z = await own_copy(client, issuer, tx)
    m = orjson.loads(z.read("manifest.json"))
    assert m["jurisdiction"]["key"] == "UNKNOWN" and m["released"] == []
    assert data.rows["sensitive"][0]["value"].encode() not in everything(z)


async def test_a_weak_verification_releases_nothing(catalogue: Catalogue) -> None:
    from datetime import UTC, datetime

    from domain.disclosures import release_for
    from exporters.facts import PersonFacts

    now = datetime.now(UTC)
    facts = PersonFacts("GDPR", "stores", "FR", now, now, "")
    strong = {
        "method": "oidc_login",
        "acr": "urn:dsar:acr:strong",
        "required_acr_values": ["urn:dsar:acr:strong"],
    }
    ok = release_for(catalogue, facts, "access", strong, by_person=True)
    assert ok is not None and ok.fields["sensitive"] == frozenset({"value"})
    for purpose, verification, by_person in [
        ("portability", strong, True),  # a copy for moving elsewhere, not the access copy
        ("access", strong, False),  # an agent or an operator asked for the person
        ("access", {**strong, "acr": "urn:dsar:acr:weak"}, True),
        ("access", {"method": "operator"}, True),
    ]:
        no = release_for(catalogue, facts, purpose, verification, by_person=by_person)
        assert no is not None and not no.fields and no.unverified
    ca = PersonFacts("CCPA", "stores", "US", now, now, "")
    assert release_for(catalogue, ca, "access", strong, by_person=True) is None
