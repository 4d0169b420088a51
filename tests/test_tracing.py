"""Traces: a span per request, per store statement and stream, and per export stream, carrying
ids, counts and timings, and never a personal value or a token (every span of a real request
and a real export, collected in memory, is searched)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address
from uuid import uuid4

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from api.devissuer import DevIssuer
from api.settings import Settings
from api.tracing import configure, provider_for
from catalogue import Catalogue
from stores.registry import Stores
from tests._factories import insert_marked, values


class _WhileTesting(InMemorySpanExporter):
    """Keeps spans only while a test of this module runs: the provider, once set, stays for
    the rest of the session, and other tests' spans must not pile up in memory."""

    recording = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return super().export(spans) if self.recording else SpanExportResult.SUCCESS


_EXPORTER = _WhileTesting()


class _OwnRandomIds(RandomIdGenerator):
    """Span and trace ids from a generator of its own. The SDK's default draws them from the
    `random` module's shared state; the provider outlives this module, so every later span of
    the session (a live server's thread in the browser tests, say) moved that state while
    hypothesis drew the planner's operations, which it reports as a strategy using `random`
    (tests/test_planner_differential.py failed so, now and then, with two test processes)."""

    def __init__(self) -> None:
        self._random = random.Random()  # ids for tests' spans, not secrets

    def generate_span_id(self) -> int:
        span_id = self._random.getrandbits(64)
        while span_id == trace.INVALID_SPAN_ID:
            span_id = self._random.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = self._random.getrandbits(128)
        while trace_id == trace.INVALID_TRACE_ID:
            trace_id = self._random.getrandbits(128)
        return trace_id


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (set once: OpenTelemetry allows no other), in memory."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        provider = TracerProvider(id_generator=_OwnRandomIds())
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    _EXPORTER.recording = True
    yield _EXPORTER
    _EXPORTER.recording = False
    _EXPORTER.clear()


def text_of(span: ReadableSpan) -> str:
    """Everything a span carries to a collector, as one string."""
    return orjson.dumps(
        {
            "name": span.name,
            "attributes": dict(span.attributes or {}),
            "events": [(e.name, dict(e.attributes or {})) for e in span.events],
            "status": span.status.description,
            "resource": dict(span.resource.attributes),
        },
        default=str,
    ).decode()


REQUEST = """mutation($input: ExportInput!) { requestExport(input: $input) {
  ... on Export { id downloadUrl } } }"""
READ = """{ me { profile { firstName lastName email }
  webAnalytics(first: 5) { edges { node { pageUrl } } }
  rightToKnow { categories { records } } } }"""


async def test_no_span_of_a_request_and_an_export_carries_a_personal_value_or_a_token(
    spans: InMemorySpanExporter,  # first: the app's pools trace only when an SDK is installed
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
) -> None:
    handle = f"traced-{uuid4().hex[:10]}"
    marker = f"TRC{uuid4().hex[:8]}"
    data = await insert_marked(stores, catalogue, handle, marker, 93)
    token = issuer.mint("customer", handle)
    auth = {"Authorization": f"Bearer {token}"}
    spans.clear()

    read = await client.post("/graphql", json={"query": READ}, headers=auth)
    assert read.status_code == 200 and marker in read.text
    asked = await client.post(
        "/graphql", json={"query": REQUEST, "variables": {"input": {"format": "CSV"}}}, headers=auth
    )
    export = asked.json()["data"]["requestExport"]
    bundle = await client.get(export["downloadUrl"], headers=auth)
    assert bundle.status_code == 200 and len(bundle.content) > 1000
    await asyncio.sleep(0.05)  # statement spans are recorded just after their statement

    finished = list(spans.get_finished_spans())
    names = [s.name for s in finished]
    # A span per request (named by its route template, never its path), per statement, and
    # one for the export stream with its id and counts.
    assert names.count("POST /graphql") == 2
    assert names.count("GET /exports/{id}") == 1
    assert names.count("db statement") >= 5
    assert names.count("store stream") >= 5
    [stream] = [s for s in finished if s.name == "export stream"]
    attributes = dict(stream.attributes or {})
    assert attributes["dsar.export_id"] == export["id"]
    assert attributes["dsar.bytes"] == len(bundle.content)
    assert attributes["dsar.records"] > 0
    # The statements of a request are its children, in its trace.
    [download] = [s for s in finished if s.name == "GET /exports/{id}"]
    assert download.context is not None
    children = [
        s for s in finished if s.parent is not None and s.parent.span_id == download.context.span_id
    ]
    assert any(s.name == "db statement" for s in children)
    assert all(s.context and s.context.trace_id == download.context.trace_id for s in children)

    # Every free-text value of theirs carries the marker; their IP addresses are values too
    # (a field with a fixed list of values, such as a form's kind, is no one's in particular).
    personal = {str(v) for v in values(data) if marker in str(v) or isinstance(v, IPv4Address)}
    assert len(personal) > 20
    personal |= {marker, handle, token, *token.split(".")}
    for span in finished:
        carried = text_of(span)
        leaked = sorted(v for v in personal if v in carried)
        assert leaked == [], f"span {span.name!r} carries {leaked}"


def test_otlp_is_set_up_only_when_an_endpoint_is_configured(settings: Settings) -> None:
    assert settings.otel_endpoint is None
    assert provider_for(settings) is None  # no SDK, no exporter: every span is a no-op
    assert configure(settings) is None
    endpoint = "http://127.0.0.1:4318"
    from_env = Settings.from_env(
        {"DSAR_HOME": str(settings.home), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    )
    assert from_env.otel_endpoint == endpoint
    provider = provider_for(from_env)
    assert provider is not None
    # The SDK lists a provider's processors nowhere public; these are its own attributes.
    processors = provider._active_span_processor._span_processors
    assert [type(p.span_exporter) for p in processors] == [OTLPSpanExporter]
    provider.shutdown()
