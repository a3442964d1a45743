"""The pipeline: each signal to the connectors that read it, queued before it is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelml import semconv
from otelml.errors import Permanent, Refused
from otelml.gateway.consumer import GroundTruthItem
from otelml.gateway.exporters.otlp import HttpTransport
from otelml.gateway.exporters.queue import DiskQueue
from otelml.gateway.exporters.sender import RetryPolicy, Sender
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.state.keys import ModelKey, SeriesKey
from tests.gateway.otlp_builders import logs, traces

RECORD = {semconv.MODEL_NAME: "m", semconv.FEATURE_PREFIX + "x": 1.0}


def _sender(tmp_path: Path, signal: str, max_bytes: int = 1 << 20) -> Sender:
    # Never started: the test reads what was queued, nothing is sent.
    return Sender(
        signal,
        signal,  # type: ignore[arg-type]
        DiskQueue(tmp_path / signal, max_bytes, "never"),
        HttpTransport("http://127.0.0.1:9", "spans", {}, 1.0),
        RetryPolicy(),
    )


def _observed(state: GatewayState) -> int:
    found = state.store.existing(ModelKey("m", ""), SeriesKey("feature", "x"))
    return 0 if found is None else int(found.counts.sum())


def test_spans_reach_every_connector_and_logs_only_those_that_read_logs() -> None:
    state = GatewayState.create()
    pipeline = state.pipeline()
    assert pipeline.consume_traces(traces([RECORD] * 3), "grpc").accepted == 3
    assert _observed(state) == 3
    (series,) = state.spanmetrics.series.values()
    assert int(series.counts.sum()) == 3
    assert pipeline.consume_logs(logs([RECORD] * 2), "http").accepted == 2
    assert _observed(state) == 5  # features read log records …
    assert int(series.counts.sum()) == 3  # … span metrics do not
    assert state.stats.accepted[("spans", "grpc")] == 3
    assert state.stats.accepted[("log_records", "http")] == 2


def test_spans_without_ids_are_rejected_counted_and_seen_by_no_connector() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(traces([RECORD] * 3))
    request.resource_spans[0].scope_spans[0].spans[1].span_id = bytes(8)
    state = GatewayState.create()
    result = state.pipeline().consume_traces(request.SerializeToString(), "http")
    assert (result.accepted, result.rejected) == (2, 1)
    assert "span_id" in result.message
    assert _observed(state) == 2
    assert state.stats.refused[("spans", "http", "invalid_id")] == 1


def test_a_full_queue_refuses_before_anything_is_counted(tmp_path: Path) -> None:
    state = GatewayState.create()
    sender = _sender(tmp_path, "spans", max_bytes=64)
    pipeline = state.pipeline([sender])
    with pytest.raises(Refused):
        pipeline.consume_traces(traces([RECORD] * 20), "grpc")
    assert _observed(state) == 0
    assert state.stats.accepted[("spans", "grpc")] == 0
    assert sender.stats.enqueue_failed["spans"] == 20
    sender.queue.close()


def test_each_signal_is_queued_for_its_own_senders(tmp_path: Path) -> None:
    spans, records = _sender(tmp_path, "spans"), _sender(tmp_path, "log_records")
    pipeline = GatewayState.create().pipeline([spans, records])
    pipeline.consume_traces(traces([RECORD] * 2), "grpc")
    pipeline.consume_logs(logs([RECORD] * 5), "grpc")
    assert (spans.queue.pending_items, records.queue.pending_items) == (2, 5)
    for sender in (spans, records):
        sender.queue.close()


def test_metrics_need_an_exporter_and_ground_truth_a_model_that_joins() -> None:
    pipeline = GatewayState.create().pipeline()
    with pytest.raises(Permanent) as no_exporter:
        pipeline.consume_metrics(b"", "http")
    assert no_exporter.value.reason == "no_exporter"
    with pytest.raises(Permanent) as no_join:
        pipeline.consume_ground_truth([GroundTruthItem(prediction_id="p", value=1.0)])
    assert no_join.value.reason == "no_ground_truth"
