"""Planned execution of a person's own records (PostGraphile's idea, issue 19): a query whose
root fields are `me` (and `__typename`), asking only for categories and their scalar fields, is
answered from a plan compiled once per document, with the same loaders, the same reads and
the same leaf coercion as the resolvers, and no resolver call per field.

Everything else, and anything that goes wrong on the way (a bad cursor, a value a type
refuses), is left to the ordinary executor, so every error is the executor's own; reads are
idempotent, so running an operation again there is safe. A store that fails is the exception:
the executor would answer 503 for the whole request, and so does the plan, at once, rather
than wait on a failing store twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    DirectiveNode,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_argument_values,
    visit,
)
from graphql.execution.collect_fields import FragmentDetails
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language import Visitor
from graphql.validation import ASTValidationRule
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionResult

from domain.errors import STORE_FAILURES
from domain.principals import Customer
from schema import cursors
from schema.context import Context, fresh_loaders
from schema.documents import parsed_or_none
from schema.plan import CategoryField, Compiler, Connection, Plan, SubjectPlan
from schema.records import RecordTypes
from schema.request_errors import GENERIC
from schema.subject import list_read, page_window
from stores.mapping import JsonPage, Position, Written

log = logging.getLogger("dsar.graphql")

# Documents kept (least recently used goes); plans per document are few (one per operation
# and per combination of the boolean variables its @skip/@include read).
DOCUMENTS = 256
PLANS_PER_DOCUMENT = 8


@dataclass(slots=True)
class _Document:
    """One query text, operation chosen: parsed, validated; None fields where it cannot plan."""

    operation: OperationDefinitionNode | None
    fragments: dict[str, FragmentDetails]
    directive_variables: tuple[str, ...]
    plans: OrderedDict[tuple[Any, ...], Plan | None] = field(default_factory=OrderedDict)


class StoreFailed(Exception):
    """A store's read failed under the field at `path`."""

    def __init__(self, path: Sequence[str | int]) -> None:
        super().__init__()
        self.path = list(path)


class Planner:
    def __init__(
        self,
        schema: GraphQLSchema,
        types: dict[str, RecordTypes],
        rules: Collection[type[ASTValidationRule]],
    ) -> None:
        self.schema = schema
        self.compiler = Compiler(schema, types)
        self.rules = tuple(rules)
        self.documents: OrderedDict[tuple[str, str | None], _Document] = OrderedDict()

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Context,
        operation_name: str | None,
    ) -> ExecutionResult | None:
        """The operation's result, or None where the executor must answer."""
        principal = context.principal
        if not isinstance(principal, Customer) or principal.subject_id is None:
            return None
        document = self._document(query, operation_name)
        if document.operation is None:
            return None
        coerced = get_variable_values(
            self.schema, document.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None  # the executor words the variables' errors
        plan = self._plan(document, coerced)
        if plan is None:
            return None
        try:
            data = await _Run(context, coerced, principal.subject_id).data(plan)
        except StoreFailed as failed:
            # A store failed: answered as the executor answers it (DsarSchema.process_errors:
            # the whole request is a 503), without asking a failing store a second time.
            log.error(
                "resolver failed",
                extra={"error": type(failed.__cause__).__name__, "event": str(failed.path)},
            )
            context.unavailable = True
            error = GraphQLError(
                GENERIC,
                path=failed.path,
                extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": context.request_id},
            )
            return ExecutionResult(data=None, errors=[error])
        except Exception:  # anything else: the executor answers, with its own errors
            # Its loaders may hold the failed reads: the executor starts afresh.
            context.loaders = fresh_loaders(context.services, context.principal)
            return None
        return ExecutionResult(data=data, errors=None)

    def _document(self, query: str, operation_name: str | None) -> _Document:
        key = (query, operation_name)
        found = self.documents.get(key)
        if found is not None:
            self.documents.move_to_end(key)
            return found
        found = self._prepare(query, operation_name)
        self.documents[key] = found
        if len(self.documents) > DOCUMENTS:
            self.documents.popitem(last=False)
        return found

    def _prepare(self, query: str, operation_name: str | None) -> _Document:
        nothing = _Document(None, {}, ())
        # The shared cache, with the executor's token limit (schema.documents).
        document = parsed_or_none(query)
        if document is None:
            return nothing
        if validate_document(self.schema, document, self.rules):
            return nothing
        operation = _operation(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return nothing
        fragments = {
            d.name.value: FragmentDetails(d)
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        if any(
            d.variable_definitions
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        ):
            return nothing
        return _Document(operation, fragments, _directive_variables(document))

    def _plan(self, document: _Document, variables: VariableValues) -> Plan | None:
        assert document.operation is not None
        key = tuple(variables.coerced.get(n) for n in document.directive_variables)
        if key in document.plans:
            return document.plans[key]
        try:
            plan: Plan | None = self.compiler.compile(
                document.operation, document.fragments, variables
            )
        except Exception:  # whatever the compiler does not know is the executor's
            plan = None
        document.plans[key] = plan
        if len(document.plans) > PLANS_PER_DOCUMENT:
            document.plans.popitem(last=False)
        return plan


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    named = [o for o in operations if o.name is not None and o.name.value == name]
    return named[0] if len(named) == 1 else None


def _directive_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables that @skip/@include read: a plan holds for one set of their values."""
    names: set[str] = set()

    class Directives(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            names.update(
                a.value.name.value
                for a in node.arguments or ()
                if isinstance(a.value, VariableNode)
            )

    visit(document, Directives())
    return tuple(sorted(names))


class _Run:
    """One execution of a plan for one subject."""

    def __init__(self, context: Context, variables: VariableValues, sid: Any) -> None:
        self.context = context
        self.variables = variables
        self.sid = sid
        self.secret = context.services.rules.secret_key

    async def data(self, plan: Plan) -> dict[str, Any]:
        entries = {
            id(entry): ([root, key], entry)
            for root, subject in plan.roots
            if not isinstance(subject, str)
            for key, kind, entry in subject
            if kind == "category"
        }
        # Arguments first (a bad one raises before any read starts), then every read together,
        # grouped as the executor's loaders group them.
        windows = {i: self._window(e) for i, (_, e) in entries.items() if e.kind == "connection"}
        asked = Counter(e.category.key for _, e in entries.values())
        reads = {
            i: self._read(e, windows.get(i), asked[e.category.key] == 1)
            for i, (_, e) in entries.items()
        }
        results = await self._batches(reads)
        for i, result in zip(reads, results, strict=True):
            if isinstance(result, STORE_FAILURES):
                raise StoreFailed(list(entries[i][0])) from result
            if isinstance(result, BaseException):
                raise result
        rows = dict(zip(reads, results, strict=True))
        out: dict[str, Any] = {}
        for key, subject in plan.roots:
            out[key] = (
                subject if isinstance(subject, str) else self._subject(subject, rows, windows)
            )
        return out

    def _window(self, entry: CategoryField) -> tuple[int, Position | None]:
        assert entry.field is not None and entry.node is not None
        args = get_argument_values(entry.field, entry.node, self.variables)
        return page_window(self.secret, entry.category.key, args.get("first"), args.get("after"))

    def _read(
        self, entry: CategoryField, window: tuple[int, Position | None] | None, once: bool
    ) -> tuple[str, Any]:
        """The loader this read goes to (as in the resolvers: schema/subject.py), and its key.
        `once`: the only read of its category in the operation (one that is asked for twice is
        read once, as rows, as the executor reads it)."""
        key, sid = entry.category.key, self.sid
        if entry.kind == "single":
            return "singles", (key, sid, entry.fields)
        if entry.kind == "list":
            return list_read(self.context, key, sid, entry.fields)
        assert window is not None and entry.connection is not None
        size, position = window
        plan = entry.connection
        if once and self.context.services.stores.writes_json(key):
            if plan.shape is not None:
                return "json_pages", (key, sid, JsonPage(size, position, entry.fields, plan.shape))
            if plan.nodes is not None:
                asked = JsonPage(size, position, entry.fields, plan.nodes, positions=True)
                return "json_pages", (key, sid, asked)
        return "pages", (key, sid, size + 1, position, entry.fields)

    async def _batches(self, reads: dict[int, tuple[str, Any]]) -> list[Any]:
        """Each read's result, or the exception of its batch. As with the DataLoaders, a key
        asked for twice is read once, and a batch fails whole."""
        loaders = self.context.loaders
        batches: dict[str, Callable[[list[Any]], Awaitable[Sequence[Any]]]] = {
            "singles": loaders.singles,
            "pages": loaders.pages,
            "json_pages": loaders.json_pages,
            "file_lists": loaders.file_lists,
        }
        kinds: dict[str, dict[Any, Any]] = {}
        for kind, key in reads.values():
            kinds.setdefault(kind, {})[key] = None
        done = await asyncio.gather(
            *(batches[kind](list(keys)) for kind, keys in kinds.items()), return_exceptions=True
        )
        for keys, found in zip(kinds.values(), done, strict=True):
            for n, key in enumerate(keys):
                keys[key] = found if isinstance(found, BaseException) else found[n]
        return [kinds[kind][key] for kind, key in reads.values()]

    def _subject(
        self,
        plan: SubjectPlan,
        rows: dict[int, Any],
        windows: dict[int, tuple[int, Position | None]],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, kind, entry in plan:
            if kind == "__typename":
                out[key] = entry
            elif kind == "id":
                out[key] = entry(str(self.sid))
            else:
                found = rows[id(entry)]
                if entry.kind == "single":
                    out[key] = None if found is None else entry.record(found)
                elif entry.kind == "list":
                    out[key] = [entry.record(r) for r in found]
                elif isinstance(found, Written):
                    assert entry.connection is not None
                    out[key] = self._written(entry.connection, entry.category.key, found)
                else:
                    assert entry.connection is not None
                    size = windows[id(entry)][0]
                    out[key] = self._connection(entry.connection, entry.category.key, found, size)
        return out

    def _connection(
        self, plan: Connection, category: str, rows: list[Any], size: int
    ) -> dict[str, Any]:
        page = rows[:size]
        marks = (
            [cursors.encode(self.secret, category, r["_pos"]) for r in page] if plan.cursors else []
        )
        edge = plan.edge
        edges = (
            [edge(r, m) for r, m in zip(page, marks, strict=True)]
            if marks
            else [edge(r, None) for r in page]
        )
        return _answer(plan, edges, len(rows) > size, marks)

    def _written(self, plan: Connection, category: str, page: Written) -> dict[str, Any]:
        """A connection whose edges (or their nodes) the database wrote (`Stores.page_json`):
        they go into the response as they are (an orjson Fragment)."""
        marks = [cursors.encode(self.secret, category, p) for p in page.positions]
        if plan.write_edge is None or plan.nodes is None:
            edges = page.text
        else:
            edges = ",".join(map(plan.write_edge, page.objects, marks))
        return _answer(plan, orjson.Fragment(f"[{edges}]"), page.more, marks)


def _answer(plan: Connection, edges: Any, more: bool, marks: list[str]) -> dict[str, Any]:
    """A connection's parts in the order asked: `edges` as given, pageInfo from `more` and
    the cursors of the records shown."""
    out: dict[str, Any] = {}
    for key, name in plan.fields:
        if name == "__typename":
            out[key] = plan.typename
        elif name == "edges":
            out[key] = edges
        else:
            info: dict[str, Any] = {}
            for pkey, pname in plan.page_info:
                if pname == "hasNextPage":
                    info[pkey] = more
                elif pname == "endCursor":
                    info[pkey] = marks[-1] if marks else None
                else:
                    info[pkey] = pname  # __typename: the plan holds the type's name
            out[key] = info
    return out
