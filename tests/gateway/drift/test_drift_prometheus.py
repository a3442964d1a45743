"""Drift seen from a real Prometheus: the drift event's exemplar opens a trace from the bin
that moved most."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelml import profile, semconv
from otelml.gateway.drift import scores
from tests.conftest import loopback_config, running_gateway
from tests.prometheus_server import running_prometheus


def test_query_exemplars_on_drift_events_returns_a_trace_from_the_drifting_bin(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(8)
    reference = profile.build(pd.DataFrame({"x": rng.normal(0, 1, 5000)}), model="d", version="1")
    path = tmp_path / "reference.json"
    profile.save(reference, path)
    config = loopback_config(
        models=[
            {
                "name": "d",
                "version": "1",
                "reference": str(path),
                "window": "2s",
                "step": "1s",
                "drift": {"min_samples": 100},
            }
        ]
    )
    edges = np.asarray(reference.features["x"].edges)  # type: ignore[union-attr]
    sent: dict[str, float] = {}
    start = time.time() - 5
    with running_gateway(config) as gw:
        provider = TracerProvider(resource=Resource.create({"service.name": "drifting"}))
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=gw.grpc_endpoint, insecure=True),
                schedule_delay_millis=100,
            )
        )
        tracer = provider.get_tracer("test")
        with running_prometheus(tmp_path, [f"127.0.0.1:{gw.ports.admin}"]) as prometheus:
            events: list[Any] = []
            deadline = time.monotonic() + 40
            while not events and time.monotonic() < deadline:
                for value in rng.normal(3.0, 1.0, 200).tolist():  # shifted by 3 σ
                    attributes = {
                        semconv.MODEL_NAME: "d",
                        semconv.MODEL_VERSION: "1",
                        semconv.FEATURE_PREFIX + "x": value,
                    }
                    with tracer.start_as_current_span("predict", attributes=attributes) as span:
                        sent[format(span.get_span_context().trace_id, "032x")] = value
                provider.force_flush(5_000)
                time.sleep(0.5)
                events = [
                    r
                    for r in prometheus.query('otelml_drift_events_total{feature="x"}')
                    if float(r["value"][1]) >= 1
                ]
            assert events, "no drift event reached Prometheus"
            assert events[0]["metric"]["method"] == "wasserstein"
            detected = prometheus.query('otelml_drift_detected{feature="x"}')
            assert detected and detected[0]["value"][1] == "1"
            found = prometheus.query_exemplars(
                'otelml_drift_events_total{feature="x"}', start, time.time() + 5
            )
        provider.shutdown()
    exemplars = [e for group in found for e in group["exemplars"]]
    assert exemplars, found
    # The bin that moved most, computed here from what was sent, holds the exemplar's value.
    live = np.bincount(
        np.searchsorted(edges, list(sent.values()), side="left"), minlength=len(edges) + 1
    )
    moved = int(np.argmax(scores.contributions(reference.features["x"].counts, live)))
    low = -np.inf if moved == 0 else edges[moved - 1]
    high = np.inf if moved == len(edges) else edges[moved]
    for exemplar in exemplars:
        trace_id = exemplar["labels"]["trace_id"]
        assert trace_id in sent
        assert float(exemplar["value"]) == sent[trace_id]
        assert low < sent[trace_id] <= high
