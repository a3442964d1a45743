"""App metrics received over OTLP → Prometheus remote write (protobuf + snappy).

Prometheus, Mimir, Thanos and VictoriaMetrics all accept remote write 1.0. The translation
follows OpenTelemetry's Prometheus compatibility rules:
- `service.name` (prefixed by `service.namespace/`) becomes `job`, `service.instance.id`
  becomes `instance`; point attributes become labels; names are sanitised to `[a-zA-Z0-9_:]`;
- gauges → one sample; cumulative monotonic sums → counters named `…_total`; cumulative
  non-monotonic sums → gauges; explicit-bucket histograms → `_bucket{le}` (cumulative),
  `_sum`, `_count`; summaries → `{quantile}`, `_sum`, `_count`;
- what Prometheus cannot store faithfully — delta temporality, exponential histograms — is
  dropped and counted by reason, never silently (unit suffixes are not added).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otelml.gateway.exporters.http import HttpConnection, HttpError, http_failure
from otelml.gateway.exporters.sender import Outcome, joined

_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


@cache
def _write_request_class() -> Any:
    """prometheus.WriteRequest (remote write 1.0), declared here: no generated code needed."""
    file = descriptor_pb2.FileDescriptorProto(
        name="otelml/remote_write.proto", package="prometheus", syntax="proto3"
    )
    optional, repeated = FieldDescriptorProto.LABEL_OPTIONAL, FieldDescriptorProto.LABEL_REPEATED
    for name, fields in (
        (
            "Label",
            [
                ("name", 1, FieldDescriptorProto.TYPE_STRING, optional, None),
                ("value", 2, FieldDescriptorProto.TYPE_STRING, optional, None),
            ],
        ),
        (
            "Sample",
            [
                ("value", 1, FieldDescriptorProto.TYPE_DOUBLE, optional, None),
                ("timestamp", 2, FieldDescriptorProto.TYPE_INT64, optional, None),
            ],
        ),
        (
            "TimeSeries",
            [
                ("labels", 1, FieldDescriptorProto.TYPE_MESSAGE, repeated, "Label"),
                ("samples", 2, FieldDescriptorProto.TYPE_MESSAGE, repeated, "Sample"),
            ],
        ),
        (
            "WriteRequest",
            [("timeseries", 1, FieldDescriptorProto.TYPE_MESSAGE, repeated, "TimeSeries")],
        ),
    ):
        message = file.message_type.add(name=name)
        for field_name, number, type_, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=type_, label=label)
            if type_name:
                field.type_name = f".prometheus.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))


def metric_name(name: str) -> str:
    cleaned = _INVALID.sub("_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


def label_name(name: str) -> str:
    cleaned = _INVALID_LABEL.sub("_", name)
    return f"key_{cleaned}" if cleaned[:1].isdigit() else cleaned


def _value(attribute: Any) -> str:
    which = attribute.value.WhichOneof("value")
    if which is None:
        return ""
    value = getattr(attribute.value, which)
    if which == "bool_value":
        return "true" if value else "false"
    return str(value)


def _job_labels(resource: Any) -> list[tuple[str, str]]:
    attributes = {a.key: _value(a) for a in resource.attributes}
    labels = []
    if "service.name" in attributes:
        namespace = attributes.get("service.namespace")
        job = attributes["service.name"]
        labels.append(("job", f"{namespace}/{job}" if namespace else job))
    if "service.instance.id" in attributes:
        labels.append(("instance", attributes["service.instance.id"]))
    return labels


def translate(payload: bytes) -> tuple[bytes, int, Counter[str]]:
    """OTLP metrics → (WriteRequest bytes, data points written, dropped points by reason)."""
    request = ExportMetricsServiceRequest.FromString(payload)
    out = _WriteRequest()
    for resource_metrics in request.resource_metrics:
        base = _job_labels(resource_metrics.resource)
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                name = metric_name(metric.name)
                kind = metric.WhichOneof("data")
                if kind in ("gauge", "sum"):
                    out.numbers(getattr(metric, kind), name, kind == "sum", base)
                elif kind == "histogram":
                    out.histograms(metric.histogram, name, base)
                elif kind == "summary":
                    out.summaries(metric.summary, name, base)
                elif kind == "exponential_histogram":
                    out.dropped["exponential_histogram"] += len(
                        metric.exponential_histogram.data_points
                    )
    return out.write.SerializeToString(), out.written, out.dropped


Labels = list[tuple[str, str]]


def _point_labels(base: Labels, point: Any) -> Labels:
    return base + [(label_name(a.key), _value(a)) for a in point.attributes]


class _WriteRequest:
    """A WriteRequest being filled, with the points written and dropped (by reason)."""

    def __init__(self) -> None:
        self.write = _write_request_class()()
        self.written = 0
        self.dropped: Counter[str] = Counter()

    def series(self, name: str, labels: Labels, value: float, time_ns: int) -> None:
        ts = self.write.timeseries.add()
        for key, val in sorted([("__name__", name), *labels]):
            ts.labels.add(name=key, value=val)
        ts.samples.add(value=value, timestamp=time_ns // 1_000_000)

    def _cumulative(self, data: Any) -> bool:
        """Prometheus stores cumulative series only: delta points are dropped and counted."""
        if data.aggregation_temporality == _CUMULATIVE:
            return True
        self.dropped["delta_temporality"] += len(data.data_points)
        return False

    def numbers(self, data: Any, name: str, is_sum: bool, base: Labels) -> None:
        """Gauges, and sums (monotonic ones as counters named `…_total`)."""
        if is_sum and not self._cumulative(data):
            return
        suffix = "_total" if is_sum and data.is_monotonic else ""
        full = name if name.endswith(suffix) else name + suffix
        for point in data.data_points:
            value = point.as_double if point.HasField("as_double") else point.as_int
            self.series(full, _point_labels(base, point), float(value), point.time_unix_nano)
            self.written += 1

    def histograms(self, data: Any, name: str, base: Labels) -> None:
        """Explicit-bucket histograms: cumulative `_bucket{le}`, `_count`, `_sum` if given."""
        if not self._cumulative(data):
            return
        for point in data.data_points:
            labels = _point_labels(base, point)
            cumulative = 0
            bounds = [*point.explicit_bounds, float("inf")]
            for bound, count in zip(bounds, point.bucket_counts, strict=False):
                cumulative += count
                le = "+Inf" if bound == float("inf") else repr(float(bound))
                self.series(
                    f"{name}_bucket", [*labels, ("le", le)], cumulative, point.time_unix_nano
                )
            self.series(f"{name}_count", labels, float(point.count), point.time_unix_nano)
            if point.HasField("sum"):
                self.series(f"{name}_sum", labels, point.sum, point.time_unix_nano)
            self.written += 1

    def summaries(self, data: Any, name: str, base: Labels) -> None:
        for point in data.data_points:
            labels = _point_labels(base, point)
            for quantile in point.quantile_values:
                quantile_labels = [*labels, ("quantile", repr(quantile.quantile))]
                self.series(name, quantile_labels, quantile.value, point.time_unix_nano)
            self.series(f"{name}_count", labels, float(point.count), point.time_unix_nano)
            self.series(f"{name}_sum", labels, point.sum, point.time_unix_nano)
            self.written += 1


class RemoteWriteTransport:
    """Sends a queued OTLP metrics request as one remote-write request."""

    def __init__(
        self, url: str, headers: dict[str, str], timeout: float, ca_file: Path | None = None
    ) -> None:
        self.url = url
        self._connection = HttpConnection(
            url,
            {
                **headers,
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0",
            },
            timeout,
            ca_file,
        )

    async def send(self, parts: list[bytes]) -> Outcome:
        body, _, dropped = translate(joined(parts))
        try:
            response = await self._connection.post([bytes(cramjam.snappy.compress_raw(body))])
        except HttpError as error:
            return Outcome(False, True, None, error.reason)
        if response.status < 300:
            return Outcome(True, dropped=dict(dropped))
        return http_failure(response, response.status == 429 or response.status >= 500)

    async def close(self) -> None:
        self._connection.close()
