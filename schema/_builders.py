"""A plan's records built by functions compiled for it: one dict display per record, its leaves
inline, instead of a loop over the plan's fields for every record (the loop was most of a
large page's cost). The generated text names only positions (`k0`, `n0`…): keys, columns and
coercions are the function's globals, so no name from a query or a stores file is ever code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Row = dict[str, Any]
# A record's fields in response order, each (response key, column, passthrough, complete): the
# row's value of `column` as it is where its class is in `passthrough` (a str for a String:
# graphql-core's own coercion would return it unchanged), else `complete(value)`; where
# `column` is None, `complete(row)` (a constant, a withheld field, a computed one).
Fields = tuple[tuple[str, str | None, frozenset[type], Callable[[Any], Any]], ...]
Build = Callable[[Row], dict[str, Any]]


def record_builder(fields: Fields) -> Build:
    """`row -> {key: leaf, ...}` for `fields`, in their order."""
    names: dict[str, Any] = {}
    parts = []
    for i, (key, column, passthrough, complete) in enumerate(fields):
        names[f"k{i}"], names[f"c{i}"] = key, complete
        if column is None:
            parts.append(f"k{i}: c{i}(row)")
        else:
            names[f"n{i}"], names[f"p{i}"] = column, passthrough
            parts.append(f"k{i}: v if (v := get(n{i})).__class__ in p{i} else c{i}(v)")
    body = ", ".join(parts)
    build: Build = _compiled(f"def build(row):\n    get = row.get\n    return {{{body}}}\n", names)
    return build


def edge_builder(
    parts: tuple[tuple[str, str], ...], node: Build, typename: str
) -> Callable[[Row, str | None], dict[str, Any]]:
    """`(row, cursor) -> edge` for an edge's parts: (key, "node" | "cursor" | "__typename")."""
    names: dict[str, Any] = {"node": node, "typename": typename}
    values = {"node": "node(row)", "cursor": "cursor", "__typename": "typename"}
    shown = []
    for i, (key, name) in enumerate(parts):
        names[f"k{i}"] = key
        shown.append(f"k{i}: {values[name]}")
    body = ", ".join(shown)
    edge: Callable[[Row, str | None], dict[str, Any]] = _compiled(
        f"def build(row, cursor):\n    return {{{body}}}\n", names
    )
    return edge


def edge_writer(
    parts: tuple[tuple[str, str], ...], typename: str
) -> Callable[[str, str | None], str]:
    """`(node's JSON text, cursor) -> the edge's JSON text`, its parts in order: the text
    orjson writes for `edge_builder`'s dict (keys, type name and cursor written by orjson)."""
    heads = [
        ("{" if i == 0 else ",") + orjson.dumps(key).decode() + ":"
        for i, (key, _) in enumerate(parts)
    ]
    names: dict[str, Any] = {"typename": orjson.dumps(typename).decode(), "dumps": orjson.dumps}
    values = {"node": "node", "cursor": "cursor_json", "__typename": "typename"}
    shown = []
    for i, (_, name) in enumerate(parts):
        names[f"h{i}"] = heads[i]
        shown.append(f"h{i} + {values[name]}")
    body = " + ".join(shown) if shown else "'{'"
    write: Callable[[str, str | None], str] = _compiled(
        "def build(node, cursor):\n"
        "    cursor_json = 'null' if cursor is None else dumps(cursor).decode()\n"
        f"    return {body} + '}}'\n",
        names,
    )
    return write


def _compiled(source: str, names: dict[str, Any]) -> Any:
    exec(source, names)  # noqa: S102  # text made above from positions only; values are globals
    return names["build"]
