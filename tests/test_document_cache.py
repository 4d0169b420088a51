"""Parsed and validated documents are cached (schema.documents' parse cache, shared by the HTTP
layer, the planner and Strawberry's executor, and Strawberry's ValidationCache: bounded LRU,
keyed by the document's text): the same operation is parsed and validated once."""

from __future__ import annotations

from uuid import uuid4

import httpx
from strawberry.extensions.validation_cache import _get_validate_cache

from api.devissuer import DevIssuer
from catalogue import Catalogue
from schema import build_schema
from schema.documents import DOCUMENT_CACHE, _parsed


async def test_an_operation_is_parsed_and_validated_once(catalogue: Catalogue) -> None:
    schema = build_schema(catalogue)
    check = _get_validate_cache(DOCUMENT_CACHE)
    query = "query CacheProbe { dataCategories { key title } }"
    first = await schema.execute(query)
    assert first.errors is None
    parsed, validated = _parsed.cache_info(), check.cache_info()
    for _ in range(3):
        again = await schema.execute(query)
        assert again.data == first.data
    assert _parsed.cache_info().hits == parsed.hits + 3
    assert _parsed.cache_info().misses == parsed.misses
    assert check.cache_info().hits == validated.hits + 3
    assert check.cache_info().misses == validated.misses
    assert _parsed.cache_info().maxsize == check.cache_info().maxsize == DOCUMENT_CACHE


async def test_a_new_document_is_parsed_once_for_the_edge_the_planner_and_the_executor(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    """A stranger's new text costs one parse, not one per reader: the HTTP layer (scopes of the
    root fields), the planner (not plannable: a root field other than `me`) and the executor."""
    query = f"query Probe{uuid4().hex[:12]} {{ me {{ id }} dataCategories {{ key }} }}"
    before = _parsed.cache_info()
    r = await client.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {issuer.mint('customer', 'alice')}"},
    )
    assert r.status_code == 200 and r.json()["data"]["me"]["id"]
    after = _parsed.cache_info()
    assert after.misses == before.misses + 1
    assert after.hits == before.hits + 2
