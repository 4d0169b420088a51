"""The person's data, as the page shows it: read by executing the GraphQL schema in-process.

Why the schema and not the store loaders directly: the page then shows exactly what the API
gives the same person, through the same resolvers, the same per-request DataLoaders, the same
signed page cursors and the same withholding (CCPA regulations §7024(d) values are never even
selected), so there is one path from a customer to their data and nothing here to keep in step
with it. The cost (about 8 µs a field) is nothing for pages of a few dozen records; bulk data
goes through exports, never through this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import strawberry

from api.account.web import when
from catalogue import Catalogue, Category, Field
from domain.principals import Customer
from domain.services import Services
from schema.context import Context
from schema.errors import InvalidCursor
from schema.subject import camel

OVERVIEW_ROWS = 5
PAGE_ROWS = 25

_RIGHT_TO_KNOW = """rightToKnow { generatedAt periodFrom choices
  jurisdiction { title description }
  categories { category { key title } records disclosedLast12Months soldOrSharedLast12Months }
  statements { key title description }
  transfers safeguards { title description } rights { key title description gdpr ccpa how }
  controller { name website email emailIsDemo address representatives }
  withholdingRule nonDiscrimination authorizedAgents }"""


class BadPage(Exception):
    """A page link whose cursor is not one of ours (altered, or for another list)."""


class DataUnavailable(Exception):
    """The schema answered with an error; its text is never shown (it may name a value)."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # the GraphQL response key
    field: Field

    @property
    def label(self) -> str:
        return self.field.description

    @property
    def type(self) -> str:
        return self.field.type

    @property
    def withheld(self) -> bool:
        return self.field.withheld


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    href: str | None = None
    held: bool = False  # "held, not shown"


@dataclass(frozen=True, slots=True)
class CategoryData:
    category: Category
    columns: tuple[Column, ...]
    rows: list[list[Cell]]
    records: int
    single: bool
    has_next: bool = False
    end_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class WithheldItem:
    what: str
    category: str
    rule: str
    released: bool  # part of the person's own copy asked for with a strong, recent sign-in
    reason: str


@dataclass(frozen=True, slots=True)
class Overview:
    held: list[CategoryData]
    not_held: list[Category]
    withheld: list[WithheldItem]
    right_to_know: Mapping[str, Any]
    counts: Mapping[str, int]

    @property
    def released(self) -> list[WithheldItem]:
        """Not shown on the page, but part of the person's own copy (GDPR Art. 15(3))."""
        return [w for w in self.withheld if w.released]

    @property
    def kept(self) -> list[WithheldItem]:
        """Never shown nor sent, not even to the person: the rule or its exception says why."""
        return [w for w in self.withheld if not w.released]


def columns(cat: Category) -> tuple[Column, ...]:
    # The record number is the store's row id: not something the policy names, so not shown.
    return tuple(
        Column(camel(f.name + "_held" if f.withheld else f.name), f)
        for f in cat.fields
        if f.name != "id"
    )


def _selection(cat: Category) -> str:
    key = camel(cat.key)
    fields = " ".join(c.key for c in columns(cat))
    if cat.paged:
        return (
            f"{key}(first: ${key}First, after: ${key}After) "
            f"{{ edges {{ node {{ {fields} }} }} pageInfo {{ hasNextPage endCursor }} }}"
        )
    return f"{key} {{ {fields} }}"


def _variables(cats: list[Category]) -> str:
    return ", ".join(
        f"${camel(c.key)}First: Int!, ${camel(c.key)}After: String" for c in cats if c.paged
    )


def overview_document(catalogue: Catalogue) -> str:
    cats = list(catalogue)
    body = " ".join(_selection(c) for c in cats)
    return (
        f"query AccountOverview({_variables(cats)}) {{ me {{ {body} {_RIGHT_TO_KNOW} "
        "withheld { category field kind rule released reason } } }"
    )


def category_document(cat: Category) -> str:
    head = f"({_variables([cat])})" if cat.paged else ""
    counts = "rightToKnow { categories { category { key } records } }"
    return f"query AccountCategory{head} {{ me {{ {_selection(cat)} {counts} }} }}"


def cell(column: Column, value: Any) -> Cell:
    if column.withheld:
        return Cell("Held, not shown", held=True) if value else Cell("Not held")
    if value is None:
        return Cell("Not recorded")
    if isinstance(value, bool):
        return Cell("Yes" if value else "No")
    if column.type == "timestamp" and isinstance(value, str):
        return Cell(when(datetime.fromisoformat(value), seconds=True))
    if column.key == "bytes" and isinstance(value, int):
        return Cell(size(value))
    if isinstance(value, int):
        return Cell(f"{value:,}")
    return Cell(column.field.label(str(value)))


def size(n: int) -> str:
    if n < 1000:
        return f"{n:,} bytes"
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if round(n / scale, 1) < 1000:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e9:.1f} GB"


def _rows(cat: Category, records: list[Mapping[str, Any]]) -> list[list[Cell]]:
    rows = []
    for record in records:
        cells = [cell(c, record.get(c.key)) for c in columns(cat)]
        if cat.key == "recordings":
            # The file itself, through the page's session (the API's link wants a bearer token).
            name = str(record["fileName"])
            cells = [Cell(name, href=f"/account/recordings/{quote(name)}"), *cells[1:]]
        rows.append(cells)
    return rows


def _category(cat: Category, value: Any, records: int) -> CategoryData:
    cols = columns(cat)
    if cat.paged:
        nodes = [edge["node"] for edge in value["edges"]]
        info = value["pageInfo"]
        return CategoryData(
            cat, cols, _rows(cat, nodes), records, False, info["hasNextPage"], info["endCursor"]
        )
    if isinstance(value, list):
        return CategoryData(cat, cols, _rows(cat, value), records, False)
    return CategoryData(cat, cols, _rows(cat, [] if value is None else [value]), records, True)


def _counts(me: Mapping[str, Any]) -> dict[str, int]:
    return {h["category"]["key"]: h["records"] for h in me["rightToKnow"]["categories"]}


def _withheld(catalogue: Catalogue, items: list[Mapping[str, Any]]) -> list[WithheldItem]:
    out = []
    for item in items:
        cat = catalogue.category(item["category"])
        kind = item.get("kind")
        what = cat.field("kind").label(str(kind)) if kind else None
        out.append(
            WithheldItem(
                what or cat.field(item["field"]).description,
                cat.title,
                item["rule"],
                item["released"],
                item["reason"],
            )
        )
    return out


async def _me(
    services: Services,
    schema: strawberry.Schema,
    principal: Customer,
    request_id: str,
    document: str,
    variables: dict[str, Any],
) -> Mapping[str, Any] | None:
    context = Context(services, principal, request_id)
    result = await schema.execute(document, variable_values=variables, context_value=context)
    if result.errors:
        if any(isinstance(e.original_error, InvalidCursor) for e in result.errors):
            raise BadPage
        raise DataUnavailable
    assert result.data is not None
    me: Mapping[str, Any] | None = result.data["me"]
    return me


async def overview(
    services: Services, schema: strawberry.Schema, principal: Customer, request_id: str
) -> Overview | None:
    """Every category (the large ones' first rows), what is withheld, the right-to-know
    statement; None when the login is linked to no data."""
    catalogue = services.catalogue
    variables: dict[str, Any] = {
        f"{camel(c.key)}First": OVERVIEW_ROWS for c in catalogue if c.paged
    }
    me = await _me(services, schema, principal, request_id, overview_document(catalogue), variables)
    if me is None:
        return None
    counts = _counts(me)
    held = [_category(c, me[camel(c.key)], counts[c.key]) for c in catalogue if counts.get(c.key)]
    return Overview(
        held=held,
        not_held=[c for c in catalogue if not counts.get(c.key)],
        withheld=_withheld(catalogue, me["withheld"]),
        right_to_know=me["rightToKnow"],
        counts=counts,
    )


async def category_page(
    services: Services,
    schema: strawberry.Schema,
    principal: Customer,
    request_id: str,
    cat: Category,
    after: str | None,
) -> CategoryData | None:
    variables: dict[str, Any] = {}
    if cat.paged:
        variables = {f"{camel(cat.key)}First": PAGE_ROWS, f"{camel(cat.key)}After": after}
    me = await _me(services, schema, principal, request_id, category_document(cat), variables)
    if me is None:
        return None
    return _category(cat, me[camel(cat.key)], _counts(me).get(cat.key, 0))
