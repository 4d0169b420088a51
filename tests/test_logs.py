"""Log lines: JSON, a request id, and never a value: not even inside a logged traceback."""

from __future__ import annotations

import logging

import orjson
import pytest

from api.logs import JsonFormatter, configure


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


def test_a_drivers_warning_never_reaches_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    """asyncmy logs each MySQL warning's text, which quotes the value that caused it."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure()
        logging.getLogger("asyncmy").warning("Truncated incorrect DECIMAL value: 'jane@x.com'")
        logging.getLogger("dsar.test").warning("kept")
        err = capsys.readouterr().err
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert "jane@x.com" not in err and "kept" in err
