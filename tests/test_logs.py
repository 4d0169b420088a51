"""Log lines: JSON, a request id, and never a value: not even inside a logged traceback."""

from __future__ import annotations

import logging

import orjson

from api.logs import JsonFormatter


def line(message: str, *args: object, exc: BaseException | None = None) -> dict[str, object]:
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, message, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, None)
    decoded: dict[str, object] = orjson.loads(JsonFormatter().format(record))
    return decoded


def test_a_traceback_logged_as_text_keeps_only_the_exception_type() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app.py", line 3, in <module>\n'
        "    connect('postgresql://alice:secret@db/accounts')\n"
        "asyncpg.exceptions.InvalidPasswordError: password authentication failed for alice\n"
    )
    logged = line(text)
    assert logged["msg"] == "traceback withheld: asyncpg.exceptions.InvalidPasswordError"
    assert "alice" not in str(logged) and "secret" not in str(logged)


def test_exceptions_are_named_not_quoted_and_lines_are_json() -> None:
    logged = line("request %s", "a\nb\x1b[31m", exc=ValueError("alice@example.com"))
    assert logged["exc_type"] == "ValueError"
    assert "alice@example.com" not in str(logged)
    assert logged["msg"] == "request a\nb\x1b[31m"  # escaped in the JSON text, one line
    assert logged["request_id"] == "-"
