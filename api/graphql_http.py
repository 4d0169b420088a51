"""GraphQL over HTTP: POST with a JSON body only, one operation, decoded and encoded by orjson.

Everything a request can get wrong is answered here with 400/401/403/405/406 before the schema
runs; the stdlib decoder would turn deep nesting or huge numbers into 500s, orjson does not.
The response's media type and the status of a request error follow the client's Accept header
(`api.graphql_media`): application/graphql-response+json or application/json.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
)
from starlette.requests import Request
from starlette.responses import Response

from api.authn import InsufficientScope, NoCredentials, StepUpRequired, uses_dpop
from api.challenges import error_response
from api.dpop import InvalidDPoPProof
from api.graphiql import graphiql_page, wants_html
from api.graphql_media import (
    JSON,
    error,
    graphql_response,
    negotiate,
    not_a_request,
    not_acceptable,
    request_error,
)
from api.tokens import InvalidToken
from api.trusted import TrustedDocuments
from domain import audit
from domain.principals import Customer, Principal
from domain.services import Services
from schema.context import Context
from schema.documents import parsed_or_none
from schema.scopes import PUBLIC, Unscoped, required_scope

AUTH_ERRORS = (NoCredentials, InvalidToken, InvalidDPoPProof, InsufficientScope, StepUpRequired)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body, default=str),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


UNAVAILABLE_MESSAGE = "The service cannot answer right now; try again shortly."


def bad_request(message: str) -> Response:
    return not_a_request(message, JSON)


def root_fields(document: DocumentNode, operation_name: str | None) -> list[str] | None:
    """Top-level field names of the operation that would run (through fragments too)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: list[str] = []
    seen: set[str] = set()

    def walk(selections: Any) -> None:
        for sel in selections:
            if isinstance(sel, FieldNode):
                names.append(sel.name.value)
            elif isinstance(sel, InlineFragmentNode):
                walk(sel.selection_set.selections)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
                if sel.name.value not in seen:
                    seen.add(sel.name.value)
                    walk(fragments[sel.name.value].selection_set.selections)

    walk(operations[0].selection_set.selections)
    return names


def check_scopes(principal: Principal | None, fields: list[str], roots: frozenset[str]) -> None:
    """Scopes default to deny (schema/scopes.py): a root field that names none is refused."""
    for name in fields:
        try:
            scope = required_scope(name, roots)
        except Unscoped:
            raise InsufficientScope(None) from None
        if scope is not None and (principal is None or scope not in principal.scopes):
            raise InsufficientScope(scope)


async def _public_only(request: Request) -> bool:
    """The body is one operation whose root fields are all public (`schema.scopes.PUBLIC`)."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return False
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return False
    name = body.get("operationName")
    document = parsed_or_none(body["query"])
    if document is None or not (name is None or isinstance(name, str)):
        return False
    fields = root_fields(document, name)
    return fields is not None and bool(fields) and set(fields) <= PUBLIC


def _body(
    raw: bytes, media: str, documents: TrustedDocuments
) -> tuple[str, dict[str, Any] | None, str | None] | Response:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return not_a_request("The body is not valid JSON.", media)
    if isinstance(body, list):
        return not_a_request("Batched requests are not supported; send one operation.", media)
    if not isinstance(body, dict):
        return not_a_request("The body must be a JSON object.", media)
    query, variables, name = body.get("query"), body.get("variables"), body.get("operationName")
    extensions = body.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        return not_a_request("`extensions` must be an object.", media)
    if query is None and (named := documents.named(body)) is not None:
        # A registered document sent by its hash alone (api/trusted.py).
        query = documents.by_hash.get(named)
        if query is None:
            return request_error(
                [error("No document is registered under this hash.", "DOCUMENT_NOT_FOUND")],
                media,
            )
    if not isinstance(query, str) or not query.strip():
        return not_a_request("`query` must be a non-empty string.", media)
    if variables is not None and not isinstance(variables, dict):
        return not_a_request("`variables` must be an object.", media)
    if name is not None and not isinstance(name, str):
        return not_a_request("`operationName` must be a string.", media)
    return query, variables, name


async def graphql_endpoint(request: Request) -> Response:
    if request.method == "GET" and wants_html(request):
        page = graphiql_page(request)  # development only
        if page is not None:
            return page
    media = negotiate(request.headers.get("accept"))
    if request.method != "POST":
        return graphql_response(
            {"errors": [error("Use POST.", "METHOD_NOT_ALLOWED")]},
            media or JSON,
            405,
            {"Allow": "POST"},
        )
    if media is None:
        return not_acceptable()
    services: Services = request.app.state.services
    principal: Principal | None
    try:
        principal = await request.app.state.security.principal(request, services)
    except AUTH_ERRORS as exc:
        # Only a request that sends no credentials at all, for public fields alone (a person
        # without an account asking for their data), goes on without a principal.
        if request.headers.getlist("authorization") or not await _public_only(request):
            return error_response(exc, media)
        principal = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return not_a_request("The body must be application/json.", media)
    documents: TrustedDocuments = request.app.state.trusted_documents
    parsed = _body(await request.body(), media, documents)
    if isinstance(parsed, Response):
        return parsed
    query, variables, operation_name = parsed
    if (
        isinstance(principal, Customer)
        and request.app.state.settings.trusted_documents_only
        and not documents.trusted(query)
    ):
        return request_error(
            [
                error(
                    "Only the registered documents of dsar's own clients are accepted with "
                    "a customer token here.",
                    "TRUSTED_DOCUMENT_REQUIRED",
                )
            ],
            media,
        )
    document = parsed_or_none(query)
    if document is not None:
        fields = root_fields(document, operation_name)
        if fields is None:
            # graphql-core would quietly pick one; a request must say which operation it means.
            return request_error(
                [
                    error(
                        "Send exactly one operation, or name it with `operationName`.",
                        "BAD_REQUEST",
                    )
                ],
                media,
            )
        try:
            check_scopes(principal, fields, request.app.state.root_fields)
        except InsufficientScope as exc:
            # A denied attempt is audited like any other (no subject: none was reached).
            await audit.denied(
                services.audit,
                request_id=request.state.request_id,
                actor=principal,
                subject_id=None,
            )
            return error_response(exc, media, dpop=uses_dpop(request.headers.get("authorization")))
    # Starlette builds it anew at each call (30 us): only a field writing a link asks for it.
    context = Context(
        services, principal, request.state.request_id, lambda: str(request.base_url).rstrip("/")
    )
    result = await request.app.state.schema.run(query, variables, context, operation_name)
    request.app.state.metrics.operations.labels("planned" if context.planned else "executor").inc()
    for name in context.limits_hit:
        request.app.state.metrics.limits.labels(name).inc()
    if context.support_misses:
        request.app.state.metrics.support_misses.inc(context.support_misses)
    if context.unavailable:
        # A store or the audit log failed under a resolver: the same 503 as anywhere else, and
        # nothing of what the other fields read (a look that was not recorded is not answered).
        return graphql_response(
            {
                # The edge's 503 shape (api/middleware.py), plus the GraphQL one.
                "error": "unavailable",
                "request_id": request.state.request_id,
                "errors": [
                    error(
                        UNAVAILABLE_MESSAGE,
                        "UNAVAILABLE",
                        requestId=request.state.request_id,
                    )
                ],
            },
            media,
            503,
            {"Retry-After": "5"},
        )
    errors = [e.formatted for e in result.errors or ()]
    if result.data is None and errors and all(e.path is None for e in result.errors or ()):
        # Nothing ran (syntax, validation, variables): a request error, with no `data` entry.
        return request_error(errors, media)
    payload: dict[str, Any] = {"errors": errors} if errors else {}
    payload["data"] = result.data
    status = context.http_status or 200
    if status == 503:
        # A resolver's 503 (the audit log down under a support look) reads like the edge's.
        payload = {"error": "unavailable", "request_id": request.state.request_id, **payload}
    return graphql_response(payload, media, status, context.http_headers)
