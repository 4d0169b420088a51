"""What every response of a reliability run must satisfy, and how it is classed.

Classes: `ok` (the caller's own data, no error), `partial` (200 with the generic masked error),
`denied` (401/403), `shed` (503 `overloaded`), `unavailable` (503 `unavailable`), `bad` (any other).
A response is a violation when it carries another subject's marker (a leak), a stack trace or
driver text, a 5xx other than 503, or a 503 without `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx
import orjson

from schema.build import GENERIC

# Text that only a stack trace, SQL or the database driver would put into a body.
TRACE_WORDS = ("Traceback", 'File "', "asyncpg", "SELECT ", "postgres", "Exception")


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str
    violation: str | None = None


def judge(response: httpx.Response, own: str | None, others: Iterable[str]) -> Verdict:
    body = response.text
    for marker in others:
        if marker in body:
            return Verdict("bad", f"leak: another subject's marker in a {response.status_code}")
    for word in TRACE_WORDS:
        if word in body:
            return Verdict("bad", f"{word!r} in a {response.status_code} body")
    status = response.status_code
    if status == 503:
        if not response.headers.get("retry-after", "").isdigit():
            return Verdict("bad", "503 without Retry-After")
        error = _json(body).get("error")
        if error == "overloaded":
            return Verdict("shed")
        if error == "unavailable":
            return Verdict("unavailable")
        return Verdict("bad", f"503 with error {error!r}")
    if status >= 500:
        return Verdict("bad", f"HTTP {status}")
    if status in (401, 403):
        return Verdict("denied")
    if status != 200:
        return Verdict("bad", f"HTTP {status}")
    payload = _json(body)
    errors = payload.get("errors")
    if errors:
        if any(e.get("message") != GENERIC for e in errors):
            return Verdict("bad", "an error other than the generic masked one")
        return Verdict("partial")
    if own is not None and own not in body:
        return Verdict("bad", "200 without the caller's own data")
    return Verdict("ok")


def _json(body: str) -> dict[str, object]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
