"""GraphQL documents parsed once per text, for everyone who reads them.

Three readers see every document: the HTTP layer (which operation runs, and the scopes of its
root fields), the planner (whether it can be planned) and Strawberry's executor. Each used to
keep its own parse cache, so a document never seen before was parsed three times: a stranger
sending new texts made the service do three times the work they sent, and each cache kept its
own tree. Here there is one bounded cache, keyed by the text and the token limit; a text that
does not parse is not cached (its error is raised again, cheaply: the token limit bounds it).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

MAX_TOKENS = 1000
# Distinct operations whose parsed and validated documents are kept (least recently used goes).
DOCUMENT_CACHE = 256


@lru_cache(maxsize=DOCUMENT_CACHE)
def _parsed(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


def parsed(query: str, max_tokens: int = MAX_TOKENS) -> DocumentNode:
    """The document of `query`; raises graphql-core's GraphQLError when it does not parse."""
    return _parsed(query, max_tokens)


def parsed_or_none(query: str) -> DocumentNode | None:
    """The document, or None when it does not parse (the executor then says why)."""
    try:
        return parsed(query)
    except GraphQLError:
        return None


class SharedParserCache(SchemaExtension):
    """Strawberry's parse step through the shared cache (in place of its ParserCache, which
    keeps a cache of its own). MaxTokensLimiter has set the token limit by then."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        limit = context.parse_options.get("max_tokens", MAX_TOKENS)
        assert context.query is not None  # Strawberry refuses a request without one before this
        context.graphql_document = parsed(context.query, limit)
        yield
