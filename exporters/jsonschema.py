"""JSON Schema (draft 2020-12) of each data file, from the catalogue's fields and types.

A JSON file is an array of typed records. A CSV file is described as the records a CSV reader
gets from it with the header row as keys: every cell is text, an empty cell is a missing value,
and each property says which type the text stands for.
"""

from __future__ import annotations

from typing import Any

from catalogue import Category, Field

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_TYPED: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "text": {"type": "string"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "timestamp": {"type": "string", "format": "date-time"},
    "inet": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    "uuid": {"type": "string", "format": "uuid"},
}
# CSV cells are text; the pattern says what text each type is written as.
_CELL: dict[str, dict[str, Any]] = {
    "string": {},
    "text": {},
    "integer": {"pattern": "^(-?[0-9]+)?$"},
    "boolean": {"enum": ["true", "false", ""]},
    "timestamp": {"pattern": "^([0-9]{4}-[0-9]{2}-[0-9]{2}[ T].+)?$"},
    "inet": {},
    "uuid": {},
}


def _withheld(field: Field, rule: str) -> tuple[str, str]:
    return (
        field.name + "_held",
        f"Whether we hold this item: {field.description}. The value itself is withheld ({rule}).",
    )


def _property(field: Field, typed: bool, rule: str) -> tuple[str, dict[str, Any]]:
    if field.withheld:
        name, description = _withheld(field, rule)
        if typed:
            return name, {"type": "boolean", "description": description}
        return name, {"type": "string", "enum": ["true", "false"], "description": description}
    prop: dict[str, Any] = {"description": field.description}
    if typed:
        prop |= _TYPED[field.type]
        prop["type"] = [prop["type"], "null"]
        if field.values:
            prop["enum"] = [*field.values, None]
    else:
        prop |= {"type": "string", "x-type": field.type} | _CELL[field.type]
        if field.values:
            prop["enum"] = [*field.values, ""]
        if field.type in ("string", "text"):
            prop["description"] += " (a leading ' was added where the text starts a formula)"
    return field.name, prop


def record_schema(
    category: Category, *, typed: bool, rule: str = "CCPA regulations § 7024(d)"
) -> dict[str, Any]:
    props = dict(_property(f, typed, rule) for f in category.fields)
    record = {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }
    return {
        "$schema": DIALECT,
        "title": category.title,
        "description": category.description,
        "type": "array",
        "items": record,
    }
