"""Both ways of answering one operation, as the HTTP layer would send them: through
`DsarSchema.run` (planned where it can be) and through the executor alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from starlette.applications import Starlette

from domain.principals import Customer
from schema.context import Context
from tests._tokens import TEST_ISSUER


@dataclass(frozen=True)
class Answers:
    planned: bool
    run: bytes  # what DsarSchema.run answered (planned, or the executor after a fallback)
    executor: bytes  # what the executor alone answered


def context(app: Starlette, subject: UUID | None) -> Context:
    principal = Customer(TEST_ISSUER, "planner-test", subject, frozenset({"dsar:self"}))
    return Context(app.state.services, principal, "req-planner")


def _body(result: Any, context: Context) -> bytes:
    """The parts of an answer the HTTP layer sends (api/graphql_http.py), serialised as it
    serialises them."""
    errors = [e.formatted for e in result.errors or ()]
    return orjson.dumps(
        {
            "errors": errors,
            "data": result.data,
            "unavailable": context.unavailable,
            "status": context.http_status,
        },
        default=str,
    )


async def both(
    app: Starlette,
    subject: UUID | None,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    only_planned: bool = False,
) -> Answers:
    """`only_planned`: where the executor answered, do not ask it again (the differential
    test compares only the planner's answers; a fallback is the executor's by construction)."""
    schema = app.state.schema
    planned = context(app, subject)
    run = await schema.run(query, variables, planned, operation_name)
    if not planned.planned and only_planned:
        return Answers(False, b"", b"")
    ordinary = context(app, subject)
    executed = await schema.execute(
        query, variable_values=variables, context_value=ordinary, operation_name=operation_name
    )
    return Answers(planned.planned, _body(run, planned), _body(executed, ordinary))
