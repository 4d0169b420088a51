"""A plan of the record-reading part of a query: `me` and its categories' records, compiled
once per document, operation and `@skip`/`@include` values.

The fields are collected by graphql-core's own `collect_fields` (fragments, aliases, merging,
directives and their order, exactly as the executor does), and every leaf is coerced by its own
GraphQL type, so an answer is the executor's byte for byte. Any field the plan does not know
raises `Unplannable`: the whole operation then goes to the executor (`schema.planner`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
)
from graphql.execution.collect_fields import (
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues

from catalogue import Category, Field
from schema._builders import Build, Fields, edge_builder, edge_writer, record_builder
from schema.records import RecordTypes, attribute, download_path, value
from schema.subject import is_list
from stores.mapping import Shape, Value

INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # GraphQL's Int
BACKREF = "strawberry-definition"  # graphql-core field -> Strawberry field (its python name)

Row = dict[str, Any]
# A record of the plan: its fields' values from a row, built by a function compiled for them
# (schema/_builders.py).
RecordPlan = Build

Sub = Callable[[GraphQLObjectType, FieldDetailsList], GroupedFieldSet]

_NOTHING: RecordPlan = record_builder(())  # where no record is asked for


class Unplannable(Exception):
    """The selection holds something only the executor answers."""


@dataclass(frozen=True, slots=True)
class Connection:
    """What a connection field asks for, each part in response order."""

    fields: tuple[tuple[str, str], ...]  # (response key, "edges" | "pageInfo" | "__typename")
    typename: str
    edge: Callable[[Row, str | None], dict[str, Any]]  # an edge from its row and cursor
    page_info: tuple[tuple[str, str], ...]  # (response key, field name or the type's name)
    cursors: bool  # a cursor is asked for (as an edge's or as `endCursor`)
    reads: frozenset[str]  # the catalogue fields its nodes read
    # An edge as the database can write it (`Stores.page_json`), where no part needs Python:
    # no cursor, and every leaf a column whose JSON is its type's.
    shape: Shape | None = None
    # Where cursors are asked for: the node as the database can write it, each edge then
    # written here from its node's text and cursor (`write_edge`).
    nodes: Shape | None = None
    write_edge: Callable[[str, str | None], str] | None = None


@dataclass(frozen=True, slots=True)
class CategoryField:
    category: Category
    kind: str  # "single" | "list" | "connection"
    record: RecordPlan  # single and list
    connection: Connection | None = None
    field: GraphQLField | None = None  # a connection's, for its arguments
    node: FieldNode | None = None
    # The catalogue fields read: those of every selection of this category in the operation,
    # so that each category is still one read (one DataLoader key) however often it is asked.
    fields: frozenset[str] = frozenset()


# A subject's fields in response order: (key, "__typename", name), (key, "id", coerce) or
# (key, "category", CategoryField).
SubjectPlan = tuple[tuple[str, str, Any], ...]


@dataclass(frozen=True, slots=True)
class Plan:
    # Root fields in response order: (key, a subject's plan) for `me`, (key, name) for
    # `__typename`.
    roots: tuple[tuple[str, SubjectPlan | str], ...]


class Compiler:
    """Knows which GraphQL types are the catalogue's records; compiles operations to plans."""

    def __init__(self, schema: GraphQLSchema, types: dict[str, RecordTypes]) -> None:
        self.schema = schema
        self.records: dict[str, RecordTypes] = {}
        self.connections: dict[str, RecordTypes] = {}
        for t in types.values():
            self.records[_name(t.record)] = t
            if t.connection is not None:
                self.connections[_name(t.connection)] = t

    def compile(
        self,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDetails],
        variables: VariableValues,
    ) -> Plan:
        query = self.schema.query_type
        assert query is not None
        collected = collect_fields(self.schema, fragments, variables, query, operation)
        _plain(collected)

        def sub(parent: GraphQLObjectType, details: FieldDetailsList) -> GroupedFieldSet:
            found = collect_subfields(self.schema, fragments, variables, operation, parent, details)
            _plain(found)
            return found.grouped_field_set

        roots: list[tuple[str, SubjectPlan | str]] = []
        for key, details in collected.grouped_field_set.items():
            name = details[0].node.name.value
            if name == "__typename":
                roots.append((key, query.name))
            elif name == "me":
                subject = _object(query.fields[name].type)
                roots.append((key, self._subject(sub, subject, sub(subject, details))))
            else:
                raise Unplannable(name)
        return Plan(_one_read_per_category(roots))

    def _subject(
        self, sub: Sub, subject: GraphQLObjectType, fields: GroupedFieldSet
    ) -> SubjectPlan:
        out: list[tuple[str, str, Any]] = []
        for key, details in fields.items():
            name = details[0].node.name.value
            if name == "__typename":
                out.append((key, name, subject.name))
                continue
            if name == "id":
                out.append((key, name, _leaf(subject.fields[name])))
                continue
            field = subject.fields.get(name)
            if field is None:
                raise Unplannable(name)
            inner = _object(field.type)
            if inner.name in self.connections:
                types = self.connections[inner.name]
                connection = self._connection(sub, types, inner, sub(inner, details))
                entry = CategoryField(
                    types.category,
                    "connection",
                    _NOTHING,
                    connection,
                    field,
                    details[0].node,
                    connection.reads,
                )
            elif inner.name in self.records:
                types = self.records[inner.name]
                kind = "list" if is_list(types.category) else "single"
                record, reads, _ = self._record(types, inner, sub(inner, details))
                entry = CategoryField(types.category, kind, record, fields=reads)
            else:
                raise Unplannable(name)
            out.append((key, "category", entry))
        return tuple(out)

    def _connection(
        self, sub: Sub, types: RecordTypes, connection: GraphQLObjectType, fields: GroupedFieldSet
    ) -> Connection:
        parts: list[tuple[str, str]] = []
        edge_parts: list[tuple[str, str]] = []
        page_parts: list[tuple[str, str]] = []
        node: RecordPlan = _NOTHING
        node_shape: Shape | None = None
        reads: frozenset[str] = frozenset()
        edge_type = _object(connection.fields["edges"].type)
        page_type = _object(connection.fields["pageInfo"].type)
        for key, details in fields.items():
            name = details[0].node.name.value
            if name in ("edges", "pageInfo") and any(n == name for _, n in parts):
                # Two aliases of one part, each with a selection of its own: one plan per
                # connection holds one selection per part, so the executor answers these.
                raise Unplannable(name)
            parts.append((key, name))
            if name == "edges":
                for ekey, edetails in sub(edge_type, details).items():
                    ename = edetails[0].node.name.value
                    if ename not in ("node", "cursor", "__typename"):
                        raise Unplannable(ename)
                    if ename == "node" and any(n == "node" for _, n in edge_parts):
                        raise Unplannable(ename)
                    edge_parts.append((ekey, ename))
                    if ename == "node":
                        record = _object(edge_type.fields["node"].type)
                        node, reads, node_shape = self._record(types, record, sub(record, edetails))
            elif name == "pageInfo":
                for pkey, pdetails in sub(page_type, details).items():
                    pname = pdetails[0].node.name.value
                    if pname not in ("hasNextPage", "endCursor", "__typename"):
                        raise Unplannable(pname)
                    page_parts.append((pkey, page_type.name if pname == "__typename" else pname))
            elif name != "__typename":
                raise Unplannable(name)
        cursors = any(n == "cursor" for _, n in edge_parts) or any(
            n == "endCursor" for _, n in page_parts
        )
        shape: Shape | None = None
        nodes: Shape | None = None
        # Edges asked for (a page of pageInfo alone is the rows' way: nothing to write), and
        # their nodes written by the database, or not asked for.
        if any(n == "edges" for _, n in parts) and (
            node_shape is not None or all(n != "node" for _, n in edge_parts)
        ):
            if cursors:
                nodes = node_shape or ()
            else:
                shape = tuple(
                    (key, edge_type.name if name == "__typename" else node_shape or ())
                    for key, name in edge_parts
                )
        return Connection(
            tuple(parts),
            connection.name,
            edge_builder(tuple(edge_parts), node, edge_type.name),
            tuple(page_parts),
            cursors,
            reads,
            shape,
            nodes,
            edge_writer(tuple(edge_parts), edge_type.name),
        )

    def _record(
        self, types: RecordTypes, record: GraphQLObjectType, fields: GroupedFieldSet
    ) -> tuple[RecordPlan, frozenset[str], Shape | None]:
        """The record's plan, the catalogue fields it reads, and its JSON shape where the
        database can write it (None where it cannot)."""
        by_attribute = {attribute(f): f for f in types.category.fields}
        reads: set[str] = set()
        out: list[tuple[str, str | None, frozenset[type], Callable[[Any], Any]]] = []
        shape: list[tuple[str, Value | str]] | None = []
        for key, details in fields.items():
            name = details[0].node.name.value
            if name == "__typename":
                out.append((key, None, frozenset(), _constant(record.name)))
                if shape is not None:
                    shape.append((key, record.name))
                continue
            gfield = record.fields[name]
            python = getattr(gfield.extensions.get(BACKREF), "python_name", None)
            complete = _leaf(gfield)
            f = by_attribute.get(python) if isinstance(python, str) else None
            if f is not None and not f.withheld:
                # Unmasked (only `me` is planned), a field's value is its column's.
                out.append((key, f.name, _passthrough(gfield), complete))
                written = _json_value(f, gfield)
                if shape is not None and written is not None:
                    shape.append((key, written))
                else:
                    shape = None
            elif f is not None:
                out.append((key, None, frozenset(), _reader(f, complete)))
            elif python == "download_path" and "file_name" in by_attribute:
                f = by_attribute["file_name"]
                out.append((key, None, frozenset(), _download(f, complete)))
            else:
                raise Unplannable(name)
            if f.withheld or python == "download_path":
                shape = None  # written in Python (schema.records.value)
            reads.add(f.name)
        leaves: Fields = tuple(out)
        return record_builder(leaves), frozenset(reads), None if shape is None else tuple(shape)


# Each catalogue type's GraphQL scalar whose coercion the database's JSON of the type
# matches (stores/postgres.py `_JSON`); "DateTime": any scalar whose coercion is isoformat().
_SCALARS: dict[str, Any] = {
    "string": GraphQLString,
    "text": GraphQLString,
    "inet": GraphQLString,
    "integer": GraphQLInt,
    "boolean": GraphQLBoolean,
    "uuid": GraphQLID,
    "timestamp": "DateTime",
}


def _json_value(f: Field, gfield: GraphQLField) -> Value | None:
    """The field as the database writes it, where that is the executor's answer."""
    t = gfield.type
    scalar = t.of_type if isinstance(t, GraphQLNonNull) else t
    expected = _SCALARS.get(f.type)
    if not isinstance(scalar, GraphQLScalarType) or expected is None:
        return None
    if scalar is not expected and not (expected == "DateTime" and _isoformat(scalar)):
        return None
    return Value(f.name, isinstance(t, GraphQLNonNull))


def _one_read_per_category(
    roots: list[tuple[str, SubjectPlan | str]],
) -> tuple[tuple[str, SubjectPlan | str], ...]:
    wanted: dict[str, set[str]] = {}
    for _, subject in roots:
        for _, kind, entry in () if isinstance(subject, str) else subject:
            if kind == "category":
                wanted.setdefault(entry.category.key, set()).update(entry.fields)
    return tuple(
        (
            key,
            subject
            if isinstance(subject, str)
            else tuple(
                (k, kind, replace(e, fields=frozenset(wanted[e.category.key])))
                if kind == "category"
                else (k, kind, e)
                for k, kind, e in subject
            ),
        )
        for key, subject in roots
    )


def _plain(collected: Any) -> None:
    """No @defer, no fragment variables: only what the ordinary executor runs the same way."""
    if collected.new_defer_usages or collected.forbidden_directive_instances:
        raise Unplannable("@defer")
    for details in collected.grouped_field_set.values():
        if any(d.fragment_variable_values is not None or d.defer_usage for d in details):
            raise Unplannable("fragment variables")


def _name(cls: Any) -> str:
    return str(cls.__strawberry_definition__.name)


def _object(t: Any) -> GraphQLObjectType:
    """The object type under non-null and list wrappers."""
    while hasattr(t, "of_type"):
        t = t.of_type
    if not isinstance(t, GraphQLObjectType):
        raise Unplannable(str(t))
    return t


def _leaf(field: GraphQLField) -> Callable[[Any], Any]:
    """The executor's `complete_value` for a scalar: null stays null where the type allows it,
    otherwise the type's own output coercion (an Int out of range raises, as it does there)."""
    t = field.type
    nullable = not isinstance(t, GraphQLNonNull)
    scalar = t.of_type if isinstance(t, GraphQLNonNull) else t
    if not isinstance(scalar, GraphQLScalarType):
        raise Unplannable(str(t))
    coerce = scalar.coerce_output_value
    whole = scalar is GraphQLInt
    iso = _isoformat(scalar)

    def complete(v: Any) -> Any:
        if v is None:
            if nullable:
                return None
            raise Unplannable("null")
        if whole and v.__class__ is int and INT_MIN <= v <= INT_MAX:
            return v  # what serialize_int returns for it
        if iso and v.__class__ is datetime and (v.tzinfo is None or v.tzinfo is UTC):
            # Kept as it is: orjson writes it as `isoformat()` would, at a tenth of the cost
            # (not so for offsets with seconds, which only other time zones have).
            return v
        out = coerce(v)
        if out is None or out is Undefined:
            raise Unplannable("null")
        return out

    return complete


_PROBES = (datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(999, 1, 2, 3, 4, 5))


def _isoformat(scalar: GraphQLScalarType) -> bool:
    """The scalar's coercion is `isoformat()` (Strawberry's DateTime)."""
    try:
        return all(scalar.coerce_output_value(p) == p.isoformat() for p in _PROBES)
    except Exception:  # a scalar that refuses datetimes is not one
        return False


def _passthrough(field: GraphQLField) -> frozenset[type]:
    """The classes of values a leaf's coercion returns unchanged: str for graphql-core's
    String and ID, bool for its Boolean (`serialize_string` & co. return them as they are),
    and None where the field is nullable."""
    t = field.type
    scalar = t.of_type if isinstance(t, GraphQLNonNull) else t
    kept: set[type] = set()
    if scalar is GraphQLString or scalar is GraphQLID:
        kept.add(str)
    elif scalar is GraphQLBoolean:
        kept.add(bool)
    if not isinstance(t, GraphQLNonNull):
        kept.add(type(None))
    return frozenset(kept)


def _constant(c: str) -> Callable[[Row], Any]:
    return lambda _row: c


def _reader(f: Field, complete: Callable[[Any], Any]) -> Callable[[Row], Any]:
    return lambda row: complete(value(f, row, False))


def _download(f: Field, complete: Callable[[Any], Any]) -> Callable[[Row], Any]:
    return lambda row: complete(download_path(value(f, row, False)))
