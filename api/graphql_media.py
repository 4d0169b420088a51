"""GraphQL over HTTP's two response media types, and the status each answer takes under them.

- `application/graphql-response+json` (preferred when the client names it): a request error
  (the body is not a GraphQL request, or the document does not parse, validate or take its
  variables) is a 400 whose body has no `data` entry.
- `application/json` (the default, and for `*/*`): such a GraphQL request error is a 200 with
  `errors` and no `data`; a body that is not a GraphQL request at all is still a 400.

Anything a resolver chose (429 with Retry-After over a limit, 503 when a store or the audit
log is down) keeps its status under both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# In the order a tie on the same q goes: a wildcard gives application/json (the legacy
# default), naming application/graphql-response+json outright wins over application/json.
SUPPORTED = (JSON, GRAPHQL_RESPONSE)


def _ranges(accept: str) -> list[tuple[str, float]]:
    """RFC 9110 section 12.5.1: media ranges with their weights (q), malformed ones skipped."""
    out = []
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if "/" not in media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out.append((media.lower(), q))
    return out


def _weight(media: str, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    """The q of the most specific range that matches `media`, and how specific it was."""
    kind = media.split("/")[0]
    best: tuple[int, float] | None = None
    for pattern, q in ranges:
        specificity = 2 if pattern == media else 1 if pattern == f"{kind}/*" else 0
        if pattern not in (media, f"{kind}/*", "*/*"):
            continue
        if best is None or specificity > best[0]:
            best = (specificity, q)
    return (0.0, 0) if best is None else (best[1], best[0])


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, or None when the client accepts neither (406)."""
    if accept is None or not accept.strip():
        return JSON
    ranges = _ranges(accept)

    def preference(index: int) -> tuple[float, int, int]:
        q, specificity = _weight(SUPPORTED[index], ranges)
        # Highest q; then a range naming the type outright; then, among types named outright,
        # application/graphql-response+json, and among wildcards, application/json.
        return (q, specificity, index if specificity == 2 else -index)

    best = max(range(len(SUPPORTED)), key=preference)
    return SUPPORTED[best] if preference(best)[0] > 0 else None


def graphql_response(
    body: Mapping[str, Any],
    media_type: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        orjson.dumps(body, default=str),
        status_code=status,
        media_type=media_type,
        headers={"Cache-Control": "no-store", "Vary": "Accept", **(headers or {})},
    )


def error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def not_a_request(message: str, media_type: str) -> Response:
    """The body is not a GraphQL request: 400 under both media types."""
    return graphql_response({"errors": [error(message, "BAD_REQUEST")]}, media_type, 400)


def request_error(errors: list[dict[str, Any]], media_type: str) -> Response:
    """A GraphQL request error (parse, validation, variables, operation choice): no `data`."""
    status = 400 if media_type == GRAPHQL_RESPONSE else 200
    return graphql_response({"errors": errors}, media_type, status)


def not_acceptable() -> Response:
    return graphql_response(
        {
            "errors": [
                error(
                    f"Accept {GRAPHQL_RESPONSE} or {JSON}.",
                    "NOT_ACCEPTABLE",
                )
            ]
        },
        JSON,
        406,
    )
