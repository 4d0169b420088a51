"""The outermost layer: request id, body size cap, access log, metrics, and no stack traces.

Written as plain ASGI so it sees every request, including those Starlette rejects itself.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.admission import Admission, Refused
from api.logs import request_id
from api.metrics import Metrics
from domain.budget import ExportBudget
from domain.errors import STORE_FAILURES

log = logging.getLogger("dsar.http")

UNAVAILABLE = STORE_FAILURES


# Requests are served `admission.slots` at once; the others wait their turn, and one that could
# not start in time is shed with 503 + Retry-After (api/admission.py). Probes never wait.
# Of the slots, kept for authenticated GraphQL queries (see `EdgeMiddleware`).
RESERVED = 4
# Seconds from a request's headers to the end of its body; past that, 408 and the connection
# is closed (the headers have their own bound: api/server.py).
BODY_TIMEOUT = 30.0
# The status a request is counted under when its client hung up before it was whole.
CLIENT_GONE = 499
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


# The edge's own answers also carry a GraphQL-shaped `errors` entry with a listed code
# (schema/error_codes.py), beside the `error` word clients and probes already read.
EDGE_ERRORS: dict[str, dict[str, str]] = {
    "request_too_large": {
        "code": "REQUEST_TOO_LARGE",
        "message": "The request body is larger than allowed.",
    },
    "request_timeout": {
        "code": "REQUEST_TIMEOUT",
        "message": "The request was not received in time; send it again.",
    },
    "overloaded": {
        "code": "OVERLOADED",
        "message": "Too many requests at once; try again in a moment.",
    },
    "unavailable": {
        "code": "UNAVAILABLE",
        "message": "The service cannot answer right now; try again shortly.",
    },
    "internal_error": {
        "code": "INTERNAL_SERVER_ERROR",
        "message": "Something went wrong. Quote the request id when you contact us.",
    },
}


def _shaped(body: dict[str, Any]) -> dict[str, Any]:
    known = EDGE_ERRORS.get(str(body.get("error")))
    if known is None or "errors" in body:
        return body
    extensions = {"code": known["code"]}
    if "request_id" in body:
        extensions["requestId"] = body["request_id"]
    return {**body, "errors": [{"message": known["message"], "extensions": extensions}]}


def _json(status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> list[Message]:
    return _messages(status, b"application/json", orjson.dumps(_shaped(body)), headers)


def _messages(
    status: int, media_type: bytes, payload: bytes, headers: list[tuple[bytes, bytes]]
) -> list[Message]:
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type),
                (b"content-length", str(len(payload)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        },
        {"type": "http.response.body", "body": payload},
    ]


# Pages people open in a browser: the edge's own refusals there are a page too, never JSON.
_PAGES = ("/account", "/requests")


def _is_page(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    return path == "/" or any(path == p or path.startswith(p + "/") for p in _PAGES)


def _page(status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> list[Message]:
    known = EDGE_ERRORS.get(str(body.get("error")), EDGE_ERRORS["internal_error"])
    rid = html.escape(str(body.get("request_id", "")))
    reference = f" Reference: {rid}." if rid else ""
    payload = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>This page cannot be shown right now</title>"
        '<link rel="stylesheet" href="/account/static/account.css"></head>'
        '<body><main id="main"><div class="wrap"><h1>This page cannot be shown right now</h1>'
        f'<p class="lead">{html.escape(known["message"])}{reference}</p>'
        '<p><a href="/account">Go to your data page</a></p></div></main></body></html>\n'
    ).encode()
    csp = (b"content-security-policy", b"default-src 'none'; style-src 'self'")
    return _messages(status, b"text/html; charset=utf-8", payload, [csp, *headers])


class EdgeMiddleware:
    """Every request: its id, its log line and metrics, the body's size and time bounds, and a
    slot of `admission` (api/admission.py).

    A request asks for a slot only once its body has arrived (a request without one, at once):
    a client that trickles its body holds a connection, never a slot, and is answered 408 when
    `body_timeout` seconds have passed since its headers. `reserved` slots are kept for small
    authenticated queries (`POST /graphql` with a bearer token): a flood of anything else
    leaves a person's own query an answer, and export streams give way to them while they are
    waiting or in flight (`budget`, domain/budget.py)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body: int,
        admission: Admission | None = None,
        budget: ExportBudget | None = None,
        reserved: int = RESERVED,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.admission = Admission() if admission is None else admission
        self.budget = budget
        self.reserved = min(reserved, self.admission.slots - 1)
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = secrets.token_hex(8)
        token = request_id.set(rid)
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "started": False, "page": _is_page(scope)}
        scope.setdefault("state", {})["request_id"] = rid

        # A small query counts for the export budget from the moment its body is whole (a
        # body trickled in is no query yet) until its last byte is handed to the connection
        # (a client that does not read its answer holds no export up).
        small = self.budget if self.budget is not None and _small_query(scope) else None
        marked = False

        def unmark() -> None:
            nonlocal marked
            if marked and small is not None:
                marked = False
                small.end_small()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                unmark()
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        counted = False
        slots = self.admission.slots
        limit = slots if _small_query(scope) else slots - self.reserved

        async def admit() -> None:
            nonlocal counted, marked
            if small is not None and not marked:
                marked = True
                small.begin_small()
            if counted or scope.get("path") in PROBES:
                return
            try:
                await self.admission.acquire(limit)
            except Refused:
                raise _Overloaded from None
            counted = True

        received = 0
        body_done = not _has_body(scope)
        deadline = asyncio.get_running_loop().time() + self.body_timeout

        async def receive_guarded() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()  # after the body: a disconnect, when it comes
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimeout from None
            if message["type"] == "http.disconnect":
                raise _ClientGone
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise _TooLarge
            if not message.get("more_body", False):
                body_done = True
                await admit()  # now, and not before: the request can be served at once
            return message

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
                raise _TooLarge
            if body_done:
                await admit()
            await self.app(scope, receive_guarded, send_wrapper)
        except _TooLarge:
            await self._reply(send_wrapper, state, 413, {"error": "request_too_large"}, [])
        except _BodyTimeout:
            await self._reply(
                send_wrapper,
                state,
                408,
                {"error": "request_timeout", "request_id": rid},
                [(b"connection", b"close")],
            )
        except (_ClientGone, ClientDisconnect):
            # The client hung up before its request was whole: its doing, not ours. Counted
            # under 499 (the status nginx gives it), and nothing is sent.
            state["status"] = CLIENT_GONE
        except _Overloaded:
            await self._reply(
                send_wrapper,
                state,
                503,
                {"error": "overloaded", "request_id": rid},
                [(b"retry-after", b"1")],
            )
        except UNAVAILABLE as exc:
            log.warning("backing store unavailable", extra={"error": type(exc).__name__})
            await self._reply(
                send_wrapper,
                state,
                503,
                {"error": "unavailable", "request_id": rid},
                [(b"retry-after", b"5")],
            )
        except Exception as exc:
            log.error("unhandled error", extra={"error": type(exc).__name__})
            await self._reply(
                send_wrapper, state, 500, {"error": "internal_error", "request_id": rid}, []
            )
        finally:
            unmark()
            if counted:
                self.admission.release()
            elapsed = time.perf_counter() - started
            route = _route(scope)
            self.metrics.requests.labels(route, str(state["status"])).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": route,
                    "status": state["status"],
                    "ms": round(elapsed * 1000, 2),
                },
            )
            request_id.reset(token)

    @staticmethod
    async def _reply(
        send: Send,
        state: dict[str, Any],
        status: int,
        body: dict[str, Any],
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        if state["started"]:
            # Headers are gone; ending the body early tells the client the transfer failed.
            return
        reply = _page if state.get("page") else _json
        for message in reply(status, body, headers):
            await send(message)


class _TooLarge(Exception):
    pass


class _Overloaded(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class _ClientGone(Exception):
    pass


def _has_body(scope: Scope) -> bool:
    """A request that says it sends a body: a Content-Length above 0, or chunked."""
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


def _small_query(scope: Scope) -> bool:
    """A GraphQL request with a bearer token: the kind the reserved slots are kept for. Only
    the header is looked at here; a token that is not valid is refused at once anyway."""
    if scope.get("path") != "/graphql" or scope.get("method") != "POST":
        return False
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return bool(value[:7].lower() == b"bearer ")
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _route(scope: Scope) -> str:
    """The route template, so ids in paths never become metric labels or log values."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
