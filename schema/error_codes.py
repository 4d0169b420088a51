"""Every `extensions.code` a GraphQL error of dsar can carry, with what a client should do.

The README's table "Error codes" lists exactly these (tests/test_error_codes.py checks both that
table and that no code is emitted anywhere in `api/` or `schema/` without being listed here).
"""

from __future__ import annotations

from collections.abc import Mapping

CODES: Mapping[str, str] = {
    # The request itself (GraphQL over HTTP: 400 under application/graphql-response+json).
    "BAD_REQUEST": "the body is not a GraphQL request (not JSON, no `query`, a batch, a wrong "
    "type of parameter, several operations and no `operationName`): fix the request",
    "NOT_ACCEPTABLE": "the Accept header allows neither application/graphql-response+json nor "
    "application/json (406)",
    "METHOD_NOT_ALLOWED": "only POST runs GraphQL (405)",
    "GRAPHQL_PARSE_FAILED": "the query is not valid GraphQL syntax (or is too long)",
    "GRAPHQL_VALIDATION_FAILED": "the query does not fit the schema, or is too deep, has too "
    "many aliases or asks for introspection outside development",
    "BAD_USER_INPUT": "an argument or variable has a value of the wrong type; `argument` or "
    "`variable` names it",
    "DOCUMENT_NOT_FOUND": "no document is registered under the `documentId` (or "
    "`persistedQuery.sha256Hash`) sent: send the document's text",
    "TRUSTED_DOCUMENT_REQUIRED": "this deployment accepts only the registered documents of its "
    "own clients from customer tokens (DSAR_TRUSTED_DOCUMENTS_ONLY=1)",
    # Credentials (HTTP 401 / 403, with the same `WWW-Authenticate` challenge as before).
    "UNAUTHENTICATED": "no bearer token was sent (401)",
    "INVALID_TOKEN": "the token was refused (401); `error_description` says why (expired, "
    "wrong audience, unknown key, …)",
    "INVALID_DPOP_PROOF": "the DPoP proof of a DPoP-bound token is missing or was refused (401, "
    '`WWW-Authenticate: DPoP error="invalid_dpop_proof"`); `error_description` says why',
    "INSUFFICIENT_SCOPE": "the token lacks the scope this field needs (403); `scope` names it",
    "INSUFFICIENT_USER_AUTHENTICATION": "log in again, more recently or more strongly (401); "
    "`acr_values` and `max_age` say how (RFC 9470)",
    "FORBIDDEN": "this kind of caller may not do this (403)",
    # Fields.
    "INVALID_CURSOR": "the `after` cursor does not belong to this list: start again from the "
    "first page",
    "INVALID_ARGUMENT": "an argument is out of range (such as `first` above its cap)",
    "INVALID_SUPPORT_ACCESS": "the ticket or reason of a support look was refused",
    "SUPPORT_LIMIT_REACHED": "the agent looked at the most people allowed in an hour (429); "
    "`retryAfter` says when to try again",
    "AUDIT_UNAVAILABLE": "the look could not be recorded, so nothing is shown (503): retry",
    "UNAVAILABLE": "a store or the service database did not answer (503 with Retry-After): retry",
    "OVERLOADED": "the request could not start in time: the process was serving as many "
    "requests as it takes and others were waiting (503 with Retry-After): retry after it",
    "REQUEST_TOO_LARGE": "the request body is over the size limit (413)",
    "REQUEST_TIMEOUT": "the request's headers or body did not arrive in time (408; the "
    "connection is closed): send it again",
    "INTERNAL_SERVER_ERROR": "a fault of ours: quote `requestId` when you contact us",
}
