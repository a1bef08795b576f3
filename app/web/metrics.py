"""GET /metrics in the Prometheus text format (prometheus_client): requests by route and status,
answer outcomes, request latency, index loads and failures, index size.

With several workers (`playbook serve --workers N`) `PROMETHEUS_MULTIPROC_DIR` is set for them
and the request figures are summed over every worker, whichever answers the scrape; the index
figures are those of that worker (all serve the same index within the watch interval).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app.engine.engine import Engine

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # the route label of a path no route serves (404s): bounded labels
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

router = APIRouter(include_in_schema=False)


class Metrics:
    """One app's request figures, in their own registry (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("playbook_requests", "HTTP requests by route and status.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("playbook_request_seconds", "Request latency by route.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.answers = Counter("playbook_answers", "Questions answered, by outcome.",
                               ["outcome"], registry=self.registry)

    def observe(self, fields: dict[str, Any], routed: bool) -> None:
        """Called once per request with its access-log fields."""
        route = fields["route"] if routed else UNMATCHED
        self.requests.labels(route, fields["method"], str(fields["status"])).inc()
        self.latency.labels(route).observe(fields["latency_ms"] / 1000)
        if "matched" in fields:
            outcome = ("refused" if not fields["matched"]
                       else "ambiguous" if fields.get("ambiguous") else "answered")
            self.answers.labels(outcome).inc()


class IndexCollector(Collector):
    """The engine's figures, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        health = self.engine.health() if self.engine.ready else None
        yield GaugeMetricFamily("playbook_index_entries", "Entries in the served index.",
                                value=health["entries"] if health else 0)
        yield GaugeMetricFamily("playbook_index_vectors", "Vectors in the served index.",
                                value=health["vectors"] if health else 0)
        yield GaugeMetricFamily("playbook_index_loads", "Index loads or builds swapped in "
                                "by this worker since it started.", value=self.engine.loads)
        yield GaugeMetricFamily("playbook_index_load_failures", "Loads that failed (the last "
                                "good index kept serving) in this worker.",
                                value=self.engine.load_failures)
        yield GaugeMetricFamily("playbook_ready", "1 when the index is loaded and current.",
                                value=1 if health and health["status"] == "ok" else 0)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    own: Metrics = request.app.state.metrics
    registry = own.registry
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry_output = generate_latest(registry)
    index_registry = CollectorRegistry()
    index_registry.register(IndexCollector(request.app.state.engine))
    return Response(registry_output + generate_latest(index_registry),
                    media_type=CONTENT_TYPE_LATEST)
