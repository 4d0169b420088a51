"""Prometheus metrics: counts and latencies by route template and status, never by value."""

from __future__ import annotations

import gc
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from domain.budget import ExportBudget


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dsar_http_requests",
            "HTTP requests by route and status.",
            ("route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "dsar_http_request_seconds",
            "HTTP request latency by route.",
            ("route",),
            registry=self.registry,
        )
        self.limits = Counter(
            "dsar_limit_reached",
            "Requests refused by a limit of the rules, by limit name.",
            ("limit",),
            registry=self.registry,
        )
        # An alert: an agent's looks that found no one (a made-up subject id, an unknown
        # address). A run of them is someone probing, whatever the hourly limit says.
        self.support_misses = Counter(
            "dsar_support_misses",
            "Support looks that found no one (subject ids or addresses that match nobody).",
            registry=self.registry,
        )
        self.operations = Counter(
            "dsar_graphql_operations",
            "GraphQL operations by how they ran: planned (schema/planner.py) or by the executor.",
            ("path",),
            registry=self.registry,
        )
        self.store_up = Gauge(
            "dsar_store_up",
            "1 when a backing store answered the last readiness check.",
            ("store",),
            registry=self.registry,
        )

        self.registry.register(_GcCollector())

        self.requests_overdue = Gauge(
            "dsar_requests_overdue",
            "Open requests past the date they are due (the extended date, once extended).",
            registry=self.registry,
        )

    def watch(self, budget: ExportBudget) -> None:
        """The export budget's own counts (domain/budget.py), read when scraped."""
        self.registry.register(_BudgetCollector(budget))

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _BudgetCollector(Collector):
    def __init__(self, budget: ExportBudget) -> None:
        self.budget = budget

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "dsar_export_gave_way",
            "Times an export stream waited between two chunks for small requests to end.",
            value=self.budget.gave_way,
        )
        yield GaugeMetricFamily(
            "dsar_export_pace_bytes_per_second",
            "The export streams' unimpeded pace together, of which they keep a share while "
            "small requests run (0: not measured yet).",
            value=self.budget.rate,
        )
        yield GaugeMetricFamily(
            "dsar_small_requests_in_flight",
            "Small requests (POST /graphql with a bearer token) waiting or in flight.",
            value=self.budget.small,
        )


class _GcCollector(Collector):
    """The cyclic collector: how many objects the start left out of its reach
    (`api.server.freeze_startup`), and its collections by generation (a full one, generation
    2, stops the event loop for as long as it walks)."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "dsar_gc_frozen_objects",
            "Objects made while starting that the cyclic garbage collector no longer walks.",
            value=gc.get_freeze_count(),
        )
        collections = CounterMetricFamily(
            "dsar_gc_collections",
            "Collections of the cyclic garbage collector, by generation.",
            labels=("generation",),
        )
        for generation, stats in enumerate(gc.get_stats()):
            collections.add_metric((str(generation),), stats["collections"])
        yield collections
