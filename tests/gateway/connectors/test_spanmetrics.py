"""Span metrics: calls and latency buckets per (service, name, kind, status), exactly."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from otelml import semconv
from otelml.gateway.connectors.spanmetrics import SpanMetricsConnector
from otelml.gateway.decode import decode_traces
from otelml.gateway.state.budget import SeriesBudget
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.spans import SpanKey, SpanMetrics, SpanSeries

START = 1_700_000_000_000_000_000


def _spans(*spans: tuple[str, str, int, int, float]) -> bytes:
    """(service, name, kind, status code, duration in seconds) per span."""
    request = ExportTraceServiceRequest()
    for i, (service, name, kind, status, seconds) in enumerate(spans):
        resource = request.resource_spans.add()
        resource.resource.attributes.add(key="service.name").value.string_value = service
        span = resource.scope_spans.add().spans.add(
            trace_id=(i + 1).to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
            name=name,
            kind=kind,
            start_time_unix_nano=START,
            end_time_unix_nano=START + round(seconds * 1e9),
        )
        span.status.code = Status.StatusCode.ValueType(status)
    return request.SerializeToString()


@pytest.fixture(autouse=True)
def _record_every_exemplar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Exemplars, "refresh_s", 0.0)


def test_calls_and_buckets_per_label_set() -> None:
    table = SpanMetrics(SeriesBudget(1000))
    connector = SpanMetricsConnector(table)
    assert connector.signals == frozenset({"spans"})
    connector.consume(
        decode_traces(
            _spans(
                ("shop", "GET /", 2, 0, 0.003),
                ("shop", "GET /", 2, 0, 0.003),
                ("shop", "GET /", 2, 0, 0.5),
                ("shop", "GET /", 2, 2, 3.0),
                ("db", "query", 3, 0, 20.0),
            )
        )
    )
    ok = table.series[SpanKey("shop", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET")]
    buckets = np.asarray(semconv.SPANMETRICS_BUCKETS)
    expected = np.bincount(
        np.searchsorted(buckets, [0.003, 0.003, 0.5], side="left"), minlength=len(buckets) + 1
    )
    assert ok.counts.tolist() == expected.tolist()
    assert ok.sum == pytest.approx(0.506)
    error = table.series[SpanKey("shop", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR")]
    assert int(error.counts.sum()) == 1
    db = table.series[SpanKey("db", "query", "SPAN_KIND_CLIENT", "STATUS_CODE_UNSET")]
    assert db.counts[-1] == 1  # 20 s: past the last bound, in +Inf
    # The +Inf bucket's exemplar opens the db span (the fifth: trace id 5).
    assert db.exemplars.trace_id[-1].tobytes() == (5).to_bytes(16, "big")


def test_rejected_spans_are_not_counted() -> None:
    table = SpanMetrics(SeriesBudget(1000))
    records = decode_traces(_spans(("s", "a", 2, 0, 0.1), ("s", "a", 2, 0, 0.1)))
    SpanMetricsConnector(table).consume(records, np.array([True, False]))
    (series,) = table.series.values()
    assert int(series.counts.sum()) == 1


def test_label_sets_past_the_budget_count_as_overflow_and_merge_adds() -> None:
    per_series = SpanSeries.series_count()
    table = SpanMetrics(SeriesBudget(per_series))  # room for one label set
    SpanMetricsConnector(table).consume(
        decode_traces(_spans(("s", "a", 2, 0, 0.1), ("s", "b", 2, 0, 0.1), ("s", "b", 2, 0, 0.1)))
    )
    assert [k.span_name for k in table.series] == ["a"]
    assert dict(table.budget.overflow) == {semconv.SPANMETRICS_CALLS: 2}
    other = SpanMetrics(SeriesBudget(1000))
    SpanMetricsConnector(other).consume(decode_traces(_spans(("s", "a", 2, 0, 0.1))))
    table.merge(other)
    (merged,) = table.series.values()
    assert int(merged.counts.sum()) == 2 and merged.sum == pytest.approx(0.2)
