"""OpenTelemetry spans of store statements and streams (the API only: the SDK and its exporter
are set up at the edge, `api/tracing.py`; without them every span here is a no-op).

Attributes carry names (database, category), counts and timings: never a statement's
arguments, a value or a row.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

from asyncpg.connection import LoggedQuery
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode

tracer = trace.get_tracer("dsar.stores")


def _operation(query: str) -> str:
    word = query.lstrip().split(None, 1)[0] if query.strip() else ""
    return word.upper() if word.isalpha() else "OTHER"


def tracing_on() -> bool:
    """True once the edge installed an SDK (OTEL_EXPORTER_OTLP_ENDPOINT, or a test's)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def statement_span(record: LoggedQuery) -> None:
    """asyncpg's query logger: one span per statement, ended when it was (it runs just after,
    in the context of the statement's caller, so its parent is the caller's span)."""
    end = time.time_ns()
    span = tracer.start_span(
        "db statement",
        kind=SpanKind.CLIENT,
        start_time=end - int(record.elapsed * 1e9),
        attributes={
            "db.system.name": "postgresql",
            "db.namespace": str(getattr(record.conn_params, "database", "") or ""),
            "db.operation.name": _operation(record.query),
        },
    )
    if record.exception is not None:
        span.set_status(StatusCode.ERROR, type(record.exception).__name__)
    span.end(end_time=end)


def stream_span(system: str, store: str, category: str) -> Span:
    """The span of one category's stream (a COPY, an unbuffered cursor); the caller ends it
    with `ended`. Not made current: it lives across an async generator's yields."""
    return tracer.start_span(
        "store stream",
        kind=SpanKind.CLIENT,
        attributes={"db.system.name": system, "dsar.store": store, "dsar.category": category},
    )


def ended(span: Span, records: int | None, error: BaseException | None = None) -> None:
    if records is not None:
        span.set_attribute("dsar.records", records)
    if error is not None:
        span.set_status(StatusCode.ERROR, type(error).__name__)
    span.end()


def statement(system: str, store: str, query: str) -> AbstractContextManager[Span]:
    """The span of one statement of a driver without a query logger (asyncmy)."""
    return tracer.start_as_current_span(
        "db statement",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": system,
            "dsar.store": store,
            "db.operation.name": _operation(query),
        },
    )
