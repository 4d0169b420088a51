"""The small queries of scenarios 4, 5 and 7, written from the catalogue so they follow it.

`me_query` asks for the caller's subject with the first page of every category, every field;
the bare endpoint (`bench.bare_app`) answers the same JSON without GraphQL.
"""

from __future__ import annotations

from catalogue import Catalogue, Category

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


def postgraphile_query(catalogue: Catalogue, first: int = 100) -> str:
    """PostGraphile's side: the same subject's first events in the same order (no login:
    PostGraphile is given the subject id, dsar works it out from the token). PostGraphile 5
    names the integer key `rowId` (its `id` is the global node id)."""
    names = record_fields(catalogue.category("web_analytics"))
    fields = " ".join("rowId" if n == "id" else n for n in names)
    return (
        "query Events($sid: UUID!) { allWebAnalytics(condition: {subjectId: $sid}, "
        f"first: {first}, orderBy: [OCCURRED_AT_ASC, ROW_ID_ASC]) {{ nodes {{ {fields} }} }} }}"
    )
