"""The GraphQL documents the page runs in-process, and how values read in plain words."""

from __future__ import annotations

import pytest
from graphql import build_schema as sdl_schema
from graphql import parse, validate
from graphql.language import Lexer, Source, TokenKind

from api.account.data import Column, category_document, cell, overview_document, size
from catalogue import Catalogue
from schema import build_schema
from schema.build import MAX_TOKENS


def tokens(document: str) -> int:
    lexer, n = Lexer(Source(document)), 0
    while lexer.advance().kind != TokenKind.EOF:
        n += 1
    return n


def test_every_document_is_valid_and_within_the_schemas_limits(catalogue: Catalogue) -> None:
    """Generated from the catalogue: a new category or field must keep the page working."""
    schema = sdl_schema(build_schema(catalogue).as_str())
    documents = [overview_document(catalogue), *(category_document(c) for c in catalogue)]
    for document in documents:
        assert validate(schema, parse(document)) == []
        assert tokens(document) < MAX_TOKENS / 2  # room for the catalogue to grow


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        (Column("passwordHashHeld", "Password", "string", True), True, "Held, not shown"),
        (Column("passwordHashHeld", "Password", "string", True), False, "Not held"),
        (Column("marketingEmails", "E-mails", "boolean", False), False, "No"),
        (Column("city", "City", "string", False), None, "Not recorded"),
        (
            Column("at", "When", "timestamp", False),
            "2025-03-04T05:06:00+00:00",
            "4 Mar 2025, 05:06 UTC",
        ),
        (
            Column("at", "When", "timestamp", False),
            "2025-03-04T05:06:07+00:00",
            "4 Mar 2025, 05:06:07 UTC",
        ),
        (Column("durationMs", "Duration", "integer", False), 61234, "61,234"),
        (Column("bytes", "Size", "integer", False), 32400, "32.4 kB"),
    ],
)
def test_values_in_plain_words(column: Column, value: object, shown: str) -> None:
    assert cell(column, value).text == shown
    assert cell(column, value).held == (shown == "Held, not shown")


def test_sizes() -> None:
    assert [size(n) for n in (0, 999, 1000, 999_999, 5 * 10**9)] == [
        "0 bytes",
        "999 bytes",
        "1.0 kB",
        "1.0 MB",
        "5.0 GB",
    ]
