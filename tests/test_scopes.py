"""Scopes default to deny: every root field names its scope or is open on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema as parse_sdl

from api.authn import InsufficientScope
from api.graphql_http import check_scopes
from catalogue import Catalogue
from domain.principals import SCOPE_CUSTOMER, SCOPE_SUPPORT, Customer
from schema import build_schema
from schema.scopes import FIELD_SCOPES, OPEN, root_fields


def test_every_root_field_of_the_sdl_names_a_scope_or_is_open(repo_root: Path) -> None:
    sdl = parse_sdl((repo_root / "schema.graphql").read_text(encoding="utf-8"))
    roots = [t for t in (sdl.query_type, sdl.mutation_type, sdl.subscription_type) if t]
    names = {name for t in roots for name in t.fields}
    assert names, "the SDL has no root fields"
    assert sorted(names - FIELD_SCOPES.keys() - OPEN) == []
    assert not FIELD_SCOPES.keys() & OPEN


def test_the_built_schema_has_the_same_root_fields(catalogue: Catalogue) -> None:
    built = root_fields(build_schema(catalogue))
    assert built - {"__typename"} <= FIELD_SCOPES.keys() | OPEN
    assert FIELD_SCOPES.keys() <= built  # no stale entry either


CUSTOMER = Customer("iss", "sub", None, frozenset({SCOPE_CUSTOMER}))


def test_a_root_field_in_neither_table_is_refused_to_everyone() -> None:
    with pytest.raises(InsufficientScope) as refused:
        check_scopes(CUSTOMER, ["me", "newField"], frozenset({"me", "newField"}))
    assert refused.value.scope is None


def test_scoped_and_open_fields_follow_the_tables() -> None:
    roots = frozenset(FIELD_SCOPES) | OPEN
    check_scopes(CUSTOMER, ["me", "dataCategories", "export", "__typename"], roots)
    with pytest.raises(InsufficientScope) as refused:
        check_scopes(CUSTOMER, ["subject"], roots)
    assert refused.value.scope == SCOPE_SUPPORT
    # A name that is no root field at all is left to validation (a 400, not a 403).
    check_scopes(CUSTOMER, ["noSuchField"], roots)
