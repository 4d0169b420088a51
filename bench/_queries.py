"""The small queries of scenarios 4, 5 and 7, written from the catalogue so they follow it.

`me_query` asks for the caller's subject with the first page of every category, every field;
`events_query` for the caller's first 100 web-analytics events. The bare endpoint
(`bench.bare_app`) answers both with the same JSON without GraphQL; `postgraphile_query` asks
PostGraphile for the same events straight from the company's table the stores file maps.
"""

from __future__ import annotations

from catalogue import Catalogue, Category
from stores.config import StoresConfig

FIRST_PAGE = 20  # the schema's default page size
LIST_LIMIT = 1000  # short lists (payment, sensitive) come whole up to this bound, as in dsar


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def kind(category: Category) -> str:
    """`paged` (a connection), `list` (many records, returned whole) or `single`."""
    if category.paged:
        return "paged"
    if category.key == "recordings" or any(f.name == "id" for f in category.fields):
        return "list"
    return "single"


def record_fields(category: Category) -> list[str]:
    names = [camel(f.name + "_held" if f.withheld else f.name) for f in category.fields]
    if category.key == "recordings":
        names.append("downloadPath")
    return names


def me_query(catalogue: Catalogue) -> str:
    parts = []
    for c in catalogue:
        fields = " ".join(record_fields(c))
        if kind(c) == "paged":
            parts.append(
                f"{camel(c.key)}(first: {FIRST_PAGE}) {{ edges {{ node {{ {fields} }} cursor }} "
                "pageInfo { hasNextPage endCursor } }"
            )
        else:
            parts.append(f"{camel(c.key)} {{ {fields} }}")
    return "query Me { me { id " + " ".join(parts) + " } }"


def events_query(catalogue: Catalogue, first: int = 100) -> str:
    """dsar's side of scenario 5: the caller's first `first` web-analytics events."""
    fields = " ".join(record_fields(catalogue.category("web_analytics")))
    page = f"webAnalytics(first: {first}) {{ edges {{ node {{ {fields} }} }} }}"
    return f"query Events {{ me {{ {page} }} }}"


def _pgl_name(column: str) -> str:
    """PostGraphile 5 (Amber) names an `id` column `rowId`: its `id` is the global node id."""
    return "rowId" if column == "id" else camel(column)


def _pgl_order(column: str) -> str:
    return ("row_id" if column == "id" else column).upper() + "_ASC"


def postgraphile_query(
    catalogue: Catalogue, config: StoresConfig, first: int = 100
) -> tuple[str, str]:
    """PostGraphile's side: the same person's first events in the same order, from the table
    `[categories.web_analytics]` maps, filtered by the one column it matches on (no login:
    PostGraphile is given that value, dsar works the person out from the token). Returns the
    query and the name of its connection field."""
    mapped = config.categories["web_analytics"]
    (column, _key), *more = mapped.match
    if more:
        raise ValueError("web_analytics matches on one column in the demo company")
    fields = " ".join(
        _pgl_name(mapped.column(f.name)) for f in catalogue.category("web_analytics").fields
    )
    order = ", ".join(_pgl_order(c) for c in mapped.order)
    table = mapped.table.rsplit(".", 1)[-1]
    connection = "all" + "".join(p.title() for p in table.split("_"))
    return (
        f"query Events($key: String!) {{ {connection}(condition: {{{camel(column)}: $key}}, "
        f"first: {first}, orderBy: [{order}]) {{ nodes {{ {fields} }} }} }}",
        connection,
    )
