"""Trusted documents (api/trusted.py): the account page's operations registered by hash; with
DSAR_TRUSTED_DOCUMENTS_ONLY=1 a customer token runs those and nothing else, sent as text or by
hash, while other callers write their own operations."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from graphql import parse, validate

from api.app import create_app
from api.devissuer import DevIssuer
from api.settings import Settings
from api.trusted import TrustedDocuments, account_documents, digest
from catalogue import Catalogue
from schema import build_schema
from schema.error_codes import CODES
from stores.deployment import Deployment
from stores.registry import Stores
from tests._tokens import TEST_ISSUER

GR = "application/graphql-response+json"


@pytest.fixture
async def strict(
    settings: Settings, deployment: Deployment, stores: Stores, issuer: DevIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        dataclasses.replace(settings, trusted_documents_only=True),
        key_sources={TEST_ISSUER: issuer.key_set()},
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def _profile(catalogue: Catalogue) -> str:
    from api.account.data import category_document

    return category_document(next(c for c in catalogue if not c.paged))


async def _post(client: httpx.AsyncClient, token: str, body: dict[str, object]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": GR}
    return await client.post("/graphql", json=body, headers=headers)


def _codes(r: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in r.json()["errors"]]


def test_every_account_document_fits_the_schema(catalogue: Catalogue) -> None:
    schema = build_schema(catalogue)._schema
    documents = account_documents(catalogue)
    assert len(TrustedDocuments(documents).by_hash) == len(documents)  # none the same
    for document in documents:
        assert validate(schema, parse(document)) == [], document[:60]


async def test_a_customer_token_runs_only_registered_documents(
    strict: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    customer = issuer.mint("customer", "alice")
    other = await _post(strict, customer, {"query": "{ me { id } }"})
    assert other.status_code == 400 and _codes(other) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert "data" not in other.json()

    document = _profile(catalogue)
    by_text = await _post(strict, customer, {"query": document})
    assert by_text.status_code == 200 and by_text.json()["data"]["me"], by_text.text
    by_hash = await _post(strict, customer, {"documentId": f"sha256:{digest(document)}"})
    assert by_hash.json() == by_text.json()
    apollo = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest(document)}}}
    assert (await _post(strict, customer, apollo)).json() == by_text.json()

    unknown = await _post(strict, customer, {"documentId": "sha256:" + "0" * 64})
    assert unknown.status_code == 400 and _codes(unknown) == ["DOCUMENT_NOT_FOUND"]
    # One character more is another document.
    changed = await _post(strict, customer, {"query": document + " "})
    assert _codes(changed) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert {"TRUSTED_DOCUMENT_REQUIRED", "DOCUMENT_NOT_FOUND"} <= CODES.keys()


async def test_other_callers_are_not_held_to_the_registered_documents(
    strict: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    for kind in ("support", "partner"):
        token = issuer.mint(kind, f"trusted-{kind}")
        r = await _post(strict, token, {"query": "{ dataCategories { key } }"})
        assert r.status_code == 200 and r.json()["data"]["dataCategories"], r.text


async def test_registered_documents_by_hash_work_without_the_setting(
    client: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    customer = issuer.mint("customer", "alice")
    document = _profile(catalogue)
    r = await _post(client, customer, {"documentId": f"sha256:{digest(document)}"})
    assert r.status_code == 200 and r.json()["data"]["me"], r.text
    assert (await _post(client, customer, {"query": "{ me { id } }"})).status_code == 200
