"""The schema for a catalogue: root fields, limits, caches and error masking."""

# No `from __future__ import annotations`: the root type is generated with real annotations.

import logging
from typing import Any
from uuid import UUID

import strawberry
from graphql import GraphQLError
from graphql.validation import (
    ASTValidationRule,
    NoSchemaIntrospectionCustomRule,
    ValidationContext,
    ValidationRule,
    ValuesOfCorrectTypeRule,
    specified_rules,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from catalogue import Catalogue
from domain.audit import AuditUnavailable
from domain.errors import STORE_FAILURES as UNAVAILABLE
from domain.principals import Customer
from schema import export_types, exports, portability, requests, support
from schema.context import Context
from schema.documents import DOCUMENT_CACHE, MAX_TOKENS, SharedParserCache
from schema.errors import PublicError
from schema.planner import Planner
from schema.policy_types import DataCategory
from schema.records import record_types
from schema.request_errors import GENERIC, ArgumentValuesRule, ShapeErrors, coded
from schema.subject import subject_type

log = logging.getLogger("dsar.graphql")

MAX_DEPTH = 10
MAX_ALIASES = 30
__all__ = ["GENERIC", "build_schema"]


class DsarSchema(strawberry.Schema):
    planner: Planner

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Context,
        operation_name: str | None,
    ) -> Any:
        """Planned where the operation only reads the caller's records (schema.planner), by
        the executor otherwise: the same answer either way."""
        result = await self.planner.run(query, variables, context, operation_name)
        if result is not None:
            context.planned = True
            return result
        return await self.execute(
            query, variable_values=variables, context_value=context, operation_name=operation_name
        )

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().execute(*args, **kwargs)
        if result.errors:
            # A syntax error is raised before any extension runs: it gets its code here.
            result.errors = [coded(e) for e in result.errors]
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry's default logs the whole error with a source excerpt and a traceback; we
        # log the exception type and path only: messages can carry values.
        for error in errors:
            original = error.original_error
            if isinstance(original, (*UNAVAILABLE, AuditUnavailable)) and execution_context:
                # Told to the HTTP layer, which answers 503: the masked error alone says 200.
                execution_context.context.unavailable = True
            if error.path is None:
                # The request's own fault (syntax, validation, a value of the wrong type): the
                # client gets a worded error; nothing here is the service's failure.
                continue
            if original is not None and not isinstance(original, PublicError):
                log.error(
                    "resolver failed",
                    extra={"error": type(original).__name__, "event": str(error.path)},
                )


class HideSuggestions(ValidationRule):
    """No "Did you mean 'profile'?" in validation errors: with introspection off, suggestions
    would let a caller rebuild the schema one typo at a time. graphql-core's `validate` takes
    `hide_suggestions`, but Strawberry calls it without; the rules read the context's flag when
    they report, so setting it as the rules are made (before any node is visited) is enough."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        context._hide_suggestions = True  # graphql-core exposes no setter


def build_schema(catalogue: Catalogue, *, dev: bool = False) -> strawberry.Schema:
    types = record_types(catalogue)
    subject = subject_type(
        catalogue,
        types,
        {**support.SUBJECT_FIELDS, **exports.SUBJECT_FIELDS, **requests.SUBJECT_FIELDS},
    )
    categories = [DataCategory.of(c) for c in catalogue.categories]

    def me(info: strawberry.Info) -> Any:
        ctx: Context = info.context
        principal = ctx.principal
        if not isinstance(principal, Customer) or principal.subject_id is None:
            return None
        return _subject(subject, principal.subject_id, masked=False)

    me.__annotations__["return"] = subject | None

    def data_categories() -> list[DataCategory]:
        return categories

    # Each domain module contributes its root fields; this is the one place they meet.
    query_fields: dict[str, Any] = {
        "me": strawberry.field(
            resolver=me,
            description="The caller's own subject (customer token); null when the login "
            "is linked to no data.",
        ),
        "data_categories": strawberry.field(
            resolver=data_categories,
            description="The catalogue: every category of personal data the policy names.",
        ),
        **exports.QUERY_FIELDS,
        **portability.QUERY_FIELDS,
        **support.query_fields(subject),
        **requests.QUERY_FIELDS,
    }
    mutation_fields: dict[str, Any] = {
        **exports.MUTATION_FIELDS,
        **portability.MUTATION_FIELDS,
        **support.MUTATION_FIELDS,
        **requests.MUTATION_FIELDS,
    }
    query = strawberry.type(
        type("Query", (), query_fields),
        description="Read a person's data, category by category.",
    )
    mutation = strawberry.type(
        type("Mutation", (), mutation_fields),
        description="Ask for copies and transfers of personal data.",
    )
    # Factories, not instances: an extension holds per-request state. The parse cache is
    # schema.documents' (shared with the HTTP layer and the planner); the validation cache
    # lives at module level in Strawberry, so it is shared all the same.
    # The rule classes are made once: ValidationCache keys on them, and the limiters' own
    # extensions would make new classes per request, so the cache would never hit (validation
    # was half of a small query's CPU).
    rules: list[type[ASTValidationRule]] = [
        depth_rule(MAX_DEPTH, None, None),
        alias_rule(MAX_ALIASES),
    ]
    if not dev:
        rules += [NoSchemaIntrospectionCustomRule, HideSuggestions]
    extensions: list[Any] = [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        SharedParserCache,
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE),
        ShapeErrors,
    ]
    schema = DsarSchema(
        query=query,
        mutation=mutation,
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=export_types.SCALARS),
    )
    # The executor's own rules, as its extensions arrange them (ShapeErrors swaps one).
    planner_rules = [
        ArgumentValuesRule if rule is ValuesOfCorrectTypeRule else rule for rule in specified_rules
    ]
    schema.planner = Planner(schema._schema, types, [*planner_rules, *rules])
    return schema


def _subject(subject: Any, sid: UUID, *, masked: bool) -> Any:
    return subject(id=strawberry.ID(str(sid)), sid=sid, masked=masked)
