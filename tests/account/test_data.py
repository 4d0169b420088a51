"""The GraphQL documents the page runs in-process, and how values read in plain words."""

from __future__ import annotations

from datetime import UTC

import pytest
from graphql import build_schema as sdl_schema
from graphql import parse, validate
from graphql.language import Lexer, Source, TokenKind

from api.account.data import Column, category_document, cell, overview_document, size
from api.account.web import TIMES_COOKIE, ZONE_COOKIE, zone, zone_of
from catalogue import Catalogue, Field
from schema import build_schema
from schema.documents import MAX_TOKENS


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


def col(key: str, type: str, *, withheld: bool = False, **labels: str) -> Column:
    return Column(key, Field(key, type, key, withheld=withheld, labels=tuple(labels.items())))


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        (col("passwordHashHeld", "string", withheld=True), True, "Held, not shown"),
        (col("passwordHashHeld", "string", withheld=True), False, "Not held"),
        (col("marketingEmails", "boolean"), False, "No"),
        (col("city", "string"), None, "Not recorded"),
        (
            col("at", "timestamp"),
            "2025-03-04T05:06:00+00:00",
            "4 Mar 2025, 05:06 UTC",
        ),
        (
            col("at", "timestamp"),
            "2025-03-04T05:06:07+00:00",
            "4 Mar 2025, 05:06:07 UTC",
        ),
        (col("durationMs", "integer"), 61234, "61,234"),
        (col("bytes", "integer"), 32400, "32.4 kB"),
        (col("action", "string", submit="Sent a form"), "submit", "Sent a form"),
        (col("action", "string", submit="Sent a form"), "wink", "wink"),
    ],
)
def test_values_in_plain_words(column: Column, value: object, shown: str) -> None:
    assert cell(column, value).text == shown
    assert cell(column, value).held == (shown == "Held, not shown")


def test_times_read_in_the_persons_zone_or_in_utc() -> None:
    at = col("at", "timestamp")
    token = zone.set(zone_of({ZONE_COOKIE: "Europe/Berlin"}))
    try:
        assert cell(at, "2025-03-04T05:06:00+00:00").text == "4 Mar 2025, 06:06 CET"
        assert cell(at, "2025-07-04T05:06:00+00:00").text == "4 Jul 2025, 07:06 CEST"
    finally:
        zone.reset(token)
    for cookies in (
        {ZONE_COOKIE: "Europe/Berlin", TIMES_COOKIE: "utc"},
        {ZONE_COOKIE: "../../etc/passwd"},
        {ZONE_COOKIE: "Mars/Olympus"},
        {},
    ):
        assert zone_of(cookies) is UTC


def test_sizes() -> None:
    assert [size(n) for n in (0, 999, 1000, 999_999, 5 * 10**9)] == [
        "0 bytes",
        "999 bytes",
        "1.0 kB",
        "1.0 MB",
        "5.0 GB",
    ]
