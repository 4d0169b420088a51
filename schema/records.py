"""One GraphQL type per category, generated from the catalogue's fields and descriptions.

Withheld fields (CCPA regulations §7024(d)) appear only as `<name>Held: Boolean`, and the
stores never read their values, so there is nothing here that could disclose one.
"""

# No `from __future__ import annotations`: the generated classes need real annotation objects.

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry

from catalogue import Catalogue, Category, Field
from domain.masking import mask

PY_TYPES: dict[str, Any] = {
    "string": str,
    "text": str,
    "integer": int,
    "boolean": bool,
    "timestamp": datetime,
    "inet": str,
    "uuid": strawberry.ID,
}


def pascal(key: str) -> str:
    return "".join(part.title() for part in key.split("_"))


@strawberry.type(description="Where a page of a list ends, and whether there is more.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More records follow this page.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@dataclass(frozen=True)
class RecordTypes:
    """The generated types of one category."""

    category: Category
    record: Any
    edge: Any = None
    connection: Any = None

    def build(self, row: dict[str, Any], masked: bool) -> Any:
        return self.record(**{attribute(f): value(f, row, masked) for f in self.category.fields})


def attribute(f: Field) -> str:
    """The record's attribute for a field: a withheld one is only `<name>_held`."""
    return f.name + "_held" if f.withheld else f.name


def value(f: Field, row: dict[str, Any], masked: bool) -> Any:
    """A field's value in a record, as the executor and the planner (schema.plan) give it."""
    if f.withheld:
        return bool(row.get(f.name + "_held"))
    found = row.get(f.name)
    return mask(f.mask, found) if masked else found


def download_path(file_name: Any) -> str:
    return f"/recordings/{file_name}"


def _record_type(cat: Category, rules: str) -> Any:
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for f in cat.fields:
        if f.withheld:
            annotations[f.name + "_held"] = bool
            namespace[f.name + "_held"] = strawberry.field(
                description=f"Whether this is held: {f.description} Answers to queries "
                f"never carry the value; `withheld` gives the rule for this subject ({rules})."
            )
        else:
            annotations[f.name] = PY_TYPES[f.type] | None
            namespace[f.name] = strawberry.field(description=f.description)
    if cat.key == "recordings":

        def download(self: Any) -> str:
            return download_path(self.file_name)

        namespace["download_path"] = strawberry.field(
            resolver=download,
            description="Where the subject downloads the file (bearer token required).",
        )
    namespace["__annotations__"] = annotations
    cls = type(f"{pascal(cat.key)}Record", (), namespace)
    return strawberry.type(cls, description=f"{cat.title}: {cat.description}")


def _connection_types(cat: Category, record: Any) -> tuple[Any, Any]:
    name = pascal(cat.key)
    edge = strawberry.type(
        type(
            f"{name}Edge",
            (),
            {
                "__annotations__": {"node": record, "cursor": str},
                "node": strawberry.field(description="The record."),
                "cursor": strawberry.field(description="Opaque position of this record."),
            },
        ),
        description=f"A record of {cat.title} in a page.",
    )
    connection = strawberry.type(
        type(
            f"{name}Connection",
            (),
            {
                "__annotations__": {"edges": list[edge], "page_info": PageInfo},  # type: ignore[valid-type]  # generated type
                "edges": strawberry.field(description="The records of this page, in order."),
                "page_info": strawberry.field(description="Where this page ends."),
            },
        ),
        description=f"A page of {cat.title}, oldest first.",
    )
    return edge, connection


def record_types(catalogue: Catalogue) -> dict[str, RecordTypes]:
    out = {}
    for cat in catalogue.categories:
        rules = " or ".join(
            [catalogue.withholding.title, *(r.title for r in catalogue.release_rules)]
        )
        record = _record_type(cat, rules)
        if cat.paged:
            edge, connection = _connection_types(cat, record)
            out[cat.key] = RecordTypes(cat, record, edge, connection)
        else:
            out[cat.key] = RecordTypes(cat, record)
    return out
