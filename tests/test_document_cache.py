"""Parsed and validated documents are cached (Strawberry's ParserCache and ValidationCache,
bounded LRU, keyed by the document's text): the same operation is parsed and validated once."""

from __future__ import annotations

from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from catalogue import Catalogue
from schema import build_schema
from schema.build import DOCUMENT_CACHE


async def test_an_operation_is_parsed_and_validated_once(catalogue: Catalogue) -> None:
    schema = build_schema(catalogue)
    parse, check = _get_parse_cache(DOCUMENT_CACHE), _get_validate_cache(DOCUMENT_CACHE)
    query = "query CacheProbe { dataCategories { key title } }"
    first = await schema.execute(query)
    assert first.errors is None
    parsed, validated = parse.cache_info(), check.cache_info()
    for _ in range(3):
        again = await schema.execute(query)
        assert again.data == first.data
    assert parse.cache_info().hits == parsed.hits + 3
    assert parse.cache_info().misses == parsed.misses
    assert check.cache_info().hits == validated.hits + 3
    assert check.cache_info().misses == validated.misses
    assert parse.cache_info().maxsize == check.cache_info().maxsize == DOCUMENT_CACHE
