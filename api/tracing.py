"""OpenTelemetry: a span per request here, a span per store statement and stream
(`stores/tracing.py`) and per export stream (`domain/downloads.py`).

Spans are exported over OTLP (HTTP/protobuf) only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
otherwise no SDK is installed and every span is a no-op. The exporter reads the standard
`OTEL_EXPORTER_OTLP_*` variables itself. Attributes carry ids, counts and timings: the route
template (never the path, which holds ids a person could be found by), the method, the status
and the request id; never a header, a token, a query or a value.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import Settings

tracer = trace.get_tracer("dsar.http")


def provider_for(settings: Settings) -> TracerProvider | None:
    """The SDK with an OTLP exporter when an endpoint is configured; else None."""
    if not settings.otel_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "dsar"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def configure(settings: Settings) -> TracerProvider | None:
    """Installs `provider_for(settings)` as the process's tracer provider, if there is one."""
    provider = provider_for(settings)
    if provider is not None:
        trace.set_tracer_provider(provider)
    return provider


class TracingMiddleware:
    """The span of one HTTP request, around everything else (its body streamed included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", ""))
        status: dict[str, Any] = {}

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            method, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        ) as span:
            try:
                await self.app(scope, receive, send_traced)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", str(route))
                request_id = scope.get("state", {}).get("request_id")
                if request_id:
                    span.set_attribute("dsar.request_id", str(request_id))
                if "code" in status:
                    span.set_attribute("http.response.status_code", int(status["code"]))
                    if status["code"] >= 500:
                        span.set_status(StatusCode.ERROR)
