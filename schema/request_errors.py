"""Errors of the request itself (syntax, validation, a value of the wrong type) and of resolvers,
shaped for the client: every error carries `extensions.code` from `schema.error_codes.CODES`.

A request error is the client's: its message names the argument or variable and the type it
expects, and never repeats the value that was sent (it may be anyone's e-mail address). A
resolver failure is ours: its message is fixed text with the request id to quote, and the error
is logged by type and path alone (`schema.build.DsarSchema.process_errors`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSyntaxError,
    ValueNode,
    VariableDefinitionNode,
    VisitorAction,
    is_input_type,
    type_from_ast,
)
from graphql.language import (
    SKIP,
    ArgumentNode,
    DirectiveNode,
    FieldNode,
    NullValueNode,
)
from graphql.utilities import validate_input_literal, validate_input_value
from graphql.validation import ValuesOfCorrectTypeRule
from strawberry.extensions import SchemaExtension

from schema.errors import PublicError

GENERIC = "Something went wrong. Quote the request id when you contact us."

# What each scalar accepts, in words a client developer can act on.
_SCALARS: Mapping[str, str] = {
    "Int": "a whole number from -2147483648 to 2147483647",
    "Float": "a finite number",
    "String": "a string",
    "Boolean": "true or false",
    "ID": "a string or a whole number",
    "DateTime": "an ISO 8601 date and time, such as 2026-12-31T23:59:59Z",
    "Date": "an ISO 8601 date, such as 2026-12-31",
    "UUID": "a UUID",
}


def _named(t: Any) -> Any:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


def _type_at(t: GraphQLInputType, path: list[str | int]) -> GraphQLInputType | None:
    """The input type found at `path` inside a value of type `t`."""
    current: Any = t
    for step in path:
        if isinstance(current, GraphQLNonNull):
            current = current.of_type
        if isinstance(step, int):
            if not isinstance(current, GraphQLList):
                return None
            current = current.of_type
        else:
            while isinstance(current, GraphQLList):
                current = current.of_type
            if not isinstance(current, GraphQLInputObjectType) or step not in current.fields:
                return None
            current = current.fields[step].type
    return current if is_input_type(current) else None


def expected(t: GraphQLInputType | None) -> str:
    """`Int!: a whole number from …` — the type and what it takes."""
    if t is None:
        return "a value of the argument's type"
    named = _named(t)
    if isinstance(named, GraphQLEnumType):
        what = "one of " + ", ".join(named.values)
    elif isinstance(named, GraphQLInputObjectType):
        fields = ", ".join(f"{name}: {f.type}" for name, f in named.fields.items())
        what = f"an object with {fields}"
    elif isinstance(named, GraphQLScalarType):
        what = _SCALARS.get(named.name, f"a {named.name}")
    else:
        what = str(named)
    if isinstance(t, GraphQLList) or (
        isinstance(t, GraphQLNonNull) and isinstance(t.of_type, GraphQLList)
    ):
        what = f"a list of {what}"
    if isinstance(t, GraphQLNonNull):
        what += ", not null"
    return f"{t} ({what})"


def _at(name: str, path: list[str | int]) -> str:
    if not path:
        return ""
    dotted = name + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return f" at '{dotted}'"


class RequestError(GraphQLError):
    """A request error dsar words itself; `extensions.code` is BAD_USER_INPUT."""

    def __init__(self, message: str, nodes: Any = None, **extensions: Any) -> None:
        super().__init__(message, nodes, extensions={"code": "BAD_USER_INPUT", **extensions})


class ArgumentValuesRule(ValuesOfCorrectTypeRule):
    """graphql-core's "values of correct type" check, reported per argument: the message names
    the argument, its field and the type expected, and never quotes the literal."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._field: str | None = None
        self._directive: str | None = None
        self._argument: str | None = None
        self._variable: str | None = None

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        self._field = node.name.value

    def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
        self._directive = node.name.value

    def leave_directive(self, node: DirectiveNode, *_args: Any) -> None:
        self._directive = None

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self._argument = node.name.value

    def leave_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self._argument = None

    def enter_variable_definition(self, node: VariableDefinitionNode, *_args: Any) -> None:
        self._variable = node.variable.name.value

    def leave_variable_definition(self, node: VariableDefinitionNode, *_args: Any) -> None:
        self._variable = None

    def is_valid_value_node(
        self, node: ValueNode, input_type: GraphQLInputType | None
    ) -> VisitorAction:
        if input_type is None:
            return SKIP
        paths: list[list[str | int]] = []
        validate_input_literal(node, input_type, lambda _e, path: paths.append(list(path)))
        if not paths:
            return SKIP
        path = paths[0]
        wanted = expected(_type_at(input_type, path))
        if self._argument is not None:
            owner = (
                f"directive '@{self._directive}'"
                if self._directive is not None
                else f"field '{self._field}'"
            )
            self.report_error(
                RequestError(
                    f"Argument '{self._argument}' of {owner} has an invalid value"
                    f"{_at(self._argument, path)}: expected {wanted}.",
                    node,
                    argument=self._argument,
                )
            )
        else:
            name = self._variable or "value"
            self.report_error(
                RequestError(
                    f"The default value of variable '${name}'{_at(name, path)} is invalid: "
                    f"expected {wanted}.",
                    node,
                    variable=name,
                )
            )
        return SKIP


def variable_error(
    error: GraphQLError, schema: GraphQLSchema, variables: Mapping[str, Any] | None
) -> RequestError | None:
    """The coercion error of a variable, reworded without its value; None if not one."""
    node = error.nodes[0] if error.nodes else None
    if not isinstance(node, VariableDefinitionNode):
        return None
    name = node.variable.name.value
    if not error.message.startswith(f"Variable '${name}' has invalid"):
        return None  # a validation error about the variable ("is never used"): kept as is
    declared = type_from_ast(schema, node.type)
    if declared is None or not is_input_type(declared):
        return None
    sent = variables or {}
    paths: list[list[str | int]] = []
    if error.message.startswith(f"Variable '${name}' has invalid default value"):
        if node.default_value is not None:
            validate_input_literal(
                node.default_value, declared, lambda _e, path: paths.append(list(path))
            )
        path = paths[0] if paths else []
        return RequestError(
            f"The default value of variable '${name}'{_at(name, path)} is invalid: "
            f"expected {expected(_type_at(declared, path))}.",
            [node],
            variable=name,
        )
    if name in sent:
        validate_input_value(sent[name], declared, lambda _e, path: paths.append(list(path)))
    path = paths[0] if paths else []
    if name not in sent:
        given = "no value"
    elif sent[name] is None and not path:
        given = "null"
    else:
        given = "a value it cannot take"
    return RequestError(
        f"Variable '${name}' was given {given}{_at(name, path)}: "
        f"expected {expected(_type_at(declared, path))}.",
        [node],
        variable=name,
    )


def classify(error: GraphQLError) -> str:
    """The code of a request error (one raised before any resolver ran)."""
    if isinstance(error, GraphQLSyntaxError) or "tokens. Parsing aborted" in error.message:
        return "GRAPHQL_PARSE_FAILED"
    return "GRAPHQL_VALIDATION_FAILED"


def coded(error: GraphQLError) -> GraphQLError:
    """`error` with a code: a parse failure is raised before any extension sees it."""
    if error.extensions and "code" in error.extensions:
        return error
    return GraphQLError(
        error.message,
        error.nodes,
        error.source,
        error.positions,
        extensions={**(error.extensions or {}), "code": classify(error)},
    )


class ShapeErrors(SchemaExtension):
    """Gives every error its code: masks resolver failures (with the request id), rewords
    variable coercion errors, and codes syntax and validation errors. Replaces graphql-core's
    values-of-correct-type rule by `ArgumentValuesRule`."""

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.validation_rules = tuple(
            ArgumentValuesRule if rule is ValuesOfCorrectTypeRule else rule
            for rule in ctx.validation_rules
        )
        yield
        result = ctx.result
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        request_id = getattr(ctx.context, "request_id", "-")
        shaped: dict[tuple[str, str], GraphQLError] = {}
        for error in errors:
            e = self._shaped(error, request_id)
            # One error per thing wrong: a variable with two bad fields reads the same twice.
            key = (e.message, repr(e.path))
            shaped.setdefault(key, e)
        result.errors = list(shaped.values())

    def _shaped(self, error: GraphQLError, request_id: str) -> GraphQLError:
        original = error.original_error
        if isinstance(original, PublicError):
            return error
        if error.path is not None:
            # A resolver failed: the message could carry anything, so it is replaced.
            return GraphQLError(
                GENERIC,
                error.nodes,
                path=error.path,
                extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
            )
        if isinstance(error, RequestError):
            return error
        reworded = variable_error(
            error, self.execution_context.schema._schema, self.execution_context.variables
        )
        if reworded is not None:
            return reworded
        if error.nodes and isinstance(error.nodes[0], NullValueNode | ValueNode):
            # A value check that ArgumentValuesRule did not word (a rule of Strawberry's own).
            return RequestError("An argument has an invalid value.", error.nodes)
        if original is not None:
            # A scalar that refused a literal without saying where (Strawberry's DateTime):
            # ArgumentValuesRule reported the same value with its argument.
            return RequestError("An argument has an invalid value.", error.nodes)
        return coded(error)
