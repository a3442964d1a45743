"""OTLP metrics requests: validated and counted, never decoded further (they are only forwarded)."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)


def count_points(payload: bytes) -> int:
    """Data points in an OTLP metrics request: the unit of the conservation counters."""
    request = ExportMetricsServiceRequest.FromString(payload)
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total
