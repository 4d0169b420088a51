"""The planner against the executor over generated operations (hypothesis-graphql over the
committed SDL): for several people, whatever the planner answers must be the executor's answer
byte for byte, and it must answer most of the operations that only read records.

Operations are drawn first (derandomized: the same ones every run, so a failure reproduces),
then run; a failure prints the operation and the person.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import graphql
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries
from starlette.applications import Starlette

from stores.seed import subject_id
from tests._planner import both, context

SDL = Path(__file__).resolve().parents[1] / "schema.graphql"
RECORDS = 1800  # operations under `me` asking for records only: the planner's part
ME = 250  # anything under `me`
ANY = 60  # any root field
CUSTOM_SCALARS = {
    "DateTime": st.datetimes().map(lambda d: nodes.String(d.isoformat() + "Z")),
    "Date": st.dates().map(nodes.String),
    "UUID": st.uuids().map(nodes.String),
    "ByteCount": st.integers(0, 2**40).map(nodes.Int),
}


def _records_only(sdl: str) -> graphql.GraphQLSchema:
    """The SDL with `Subject` cut down to its id and its categories (the fields whose type is
    a record, a list of records or a connection)."""
    document = graphql.parse(sdl)
    definitions = []
    for d in document.definitions:
        if isinstance(d, graphql.ObjectTypeDefinitionNode) and d.name.value == "Subject":
            kept = tuple(
                f
                for f in d.fields or ()
                if f.name.value == "id" or _named(f.type).endswith(("Record", "Connection"))
            )
            d = graphql.ObjectTypeDefinitionNode(
                name=d.name, description=d.description, interfaces=d.interfaces,
                directives=d.directives, fields=kept,
            )  # fmt: skip
        definitions.append(d)
    return graphql.build_ast_schema(graphql.DocumentNode(definitions=tuple(definitions)))


def _named(t: Any) -> str:
    while not isinstance(t, graphql.NamedTypeNode):
        t = t.type
    return str(t.name.value)


def _pages(cursors: dict[str, list[str]]) -> Any:
    """Prints a drawn operation with its paging arguments moved towards what clients send:
    `first` from 1 to 121, `after` null or a real cursor of the connection (drawn strings are
    never cursors, nor 0 a page size: those would test the executor alone, and the `me` suite
    and tests/test_planner.py keep them)."""

    class Paging(graphql.Visitor):
        def __init__(self) -> None:
            super().__init__()
            self.field: list[str] = []

        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            self.field.append(node.name.value)

        def leave_field(self, node: graphql.FieldNode, *_: Any) -> None:
            self.field.pop()

        def leave_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            value = node.value
            if node.name.value == "first" and isinstance(value, graphql.IntValueNode):
                n = int(value.value)
                return graphql.ArgumentNode(name=node.name, value=nodes.Int(1 + abs(n) % 120))
            known = cursors.get(self.field[-1]) if self.field else None
            if node.name.value == "after" and isinstance(value, graphql.StringValueNode):
                if not value.value:
                    return graphql.ArgumentNode(name=node.name, value=graphql.NullValueNode())
                if known:
                    pick = known[sum(map(ord, value.value)) % len(known)]
                    return graphql.ArgumentNode(name=node.name, value=nodes.String(pick))
            return None

    return lambda document: graphql.print_ast(graphql.visit(document, Paging()))


async def _cursors(app: Starlette) -> dict[str, list[str]]:
    """Every cursor of alice's first pages, by connection field."""

    names = [
        f.name.value
        for f in (_records_only(SDL.read_text()).type_map["Subject"].ast_node.fields or ())  # type: ignore[union-attr]  # built from SDL: has its node
        if _named(f.type).endswith("Connection")
    ]
    pages = " ".join(f"{n}(first: 100) {{ edges {{ cursor }} }}" for n in names)
    query = f"{{ me {{ {pages} }} }}"
    result = await app.state.schema.execute(query, context_value=context(app, subject_id("alice")))
    assert not result.errors, result.errors
    return {n: [e["cursor"] for e in result.data["me"][n]["edges"]] for n in names}


def _draw(strategy: st.SearchStrategy[Any], n: int) -> list[str]:
    drawn: list[str] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(query: str) -> None:
        drawn.append(query)

    collect()
    return drawn


def _people() -> list[UUID]:
    # Full data (alice, carol with sensitive data), bob, dave with few categories, and a
    # subject nobody's data is found for.
    return [*(subject_id(h) for h in ("alice", "bob", "carol", "dave")), uuid4()]


async def test_planned_answers_are_the_executors(app: Starlette) -> None:
    sdl = SDL.read_text()
    records = queries(
        _records_only(sdl),
        fields=["me"],
        custom_scalars=CUSTOM_SCALARS,
        print_ast=_pages(await _cursors(app)),
    )
    anything_me = queries(sdl, fields=["me"], custom_scalars=CUSTOM_SCALARS)
    anything = queries(sdl, custom_scalars=CUSTOM_SCALARS)
    started = time.monotonic()
    suites = {
        "records": _draw(records, RECORDS),
        "me": _draw(anything_me, ME),
        "any": _draw(anything, ANY),
    }
    people = _people()
    planned: dict[str, int] = {}
    for name, drawn in suites.items():
        planned[name] = 0
        for i, query in enumerate(drawn):
            person = people[i % len(people)]
            answers = await both(app, person, query, only_planned=True)
            if answers.planned:
                planned[name] += 1
                assert answers.run == answers.executor, (query, person)
    elapsed = time.monotonic() - started
    print(f"planned: {planned} of { ({k: len(v) for k, v in suites.items()}) } in {elapsed:.1f} s")
    # The planner must not quietly leave everything to the executor.
    assert planned["records"] >= 0.9 * len(suites["records"]), planned
    assert planned["me"] > 0, planned
