"""The proxy's own counters, exposed on its admin port's /metrics (never on the proxied port,
so no upstream path is shadowed).

Low volume (a few label sets per route), so prometheus_client is the right tool here; the
request path only increments cached children.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter

REQUESTS = "otelml_proxy_requests"
EXTRACTION_FAILURES = "otelml_proxy_extraction_failures"
ROWS = "otelml_proxy_rows"
UPSTREAM_ERRORS = "otelml_proxy_upstream_errors"
SPANS_EXPORTED = "otelml_proxy_spans_exported"
SPANS_EXPORT_FAILED = "otelml_proxy_spans_export_failed"

#: `route` label of requests no rule matches.
UNMATCHED = "__unmatched__"


class ProxyMetrics:
    """One registry per proxy (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            REQUESTS,
            "Requests proxied, by route (the rule's path), method and status sent to the client "
            "(499: the client left before its request body was complete).",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.failures = Counter(
            EXTRACTION_FAILURES,
            "Problems met while extracting features and predictions (the request is still "
            "served): not_json, bad_encoding, too_large, missing_field, wrong_type, "
            "row_mismatch, too_many_attributes, internal_error.",
            ["route", "reason"],
            registry=self.registry,
        )
        self.rows = Counter(
            ROWS, "Rows (inferences) extracted into spans.", ["route"], registry=self.registry
        )
        self.upstream_errors = Counter(
            UPSTREAM_ERRORS,
            "Upstream requests that failed in transport: connect (answered 502), timeout "
            "(504), protocol (502), or broken after the response started.",
            ["route", "reason"],
            registry=self.registry,
        )
        self.spans_exported = Counter(
            SPANS_EXPORTED, "Spans the OTLP exporter delivered.", registry=self.registry
        )
        self.spans_failed = Counter(
            SPANS_EXPORT_FAILED,
            "Spans the OTLP exporter gave up on (gateway away); requests are not affected.",
            registry=self.registry,
        )
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._rows: dict[str, Counter] = {}

    def request(self, route: str, method: str, status: int) -> None:
        key = (route, method, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(route, method, str(status))
        child.inc()

    def add_rows(self, route: str, rows: int) -> None:
        child = self._rows.get(route)
        if child is None:
            child = self._rows[route] = self.rows.labels(route)
        child.inc(rows)

    def problems(self, route: str, problems: Mapping[str, int]) -> None:
        for reason, count in problems.items():
            if count:
                self.failures.labels(route, reason).inc(count)
