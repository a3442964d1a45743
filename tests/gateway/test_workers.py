"""`workers: 2`: two processes behind shared ports, one merged /metrics, clean SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import grpc
import httpx
import numpy as np
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from otelml import semconv
from otelml.gateway.state.distributions import default_edges
from tests.gateway.otlp_builders import traces
from tests.gateway_process import GatewayProcess

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_two_workers_merge_into_one_exact_exposition(tmp_path: Path) -> None:
    gateway = GatewayProcess.configure(tmp_path, "workers: 2\n")
    grpc_port, admin_port = gateway.grpc_port, gateway.admin_port
    try:
        process = gateway.start()
        rng = np.random.default_rng(3)
        sent: list[float] = []
        # A new connection per request: SO_REUSEPORT spreads connections over the workers.
        for i in range(24):
            values = rng.normal(0, 20, 10).tolist()
            spans = [{semconv.MODEL_NAME: "w", semconv.FEATURE_PREFIX + "x": v} for v in values]
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                export = channel.unary_unary(EXPORT, request_serializer=None)
                export(traces(spans, first_trace=1 + 100 * i), timeout=10)
            sent += values
        text = httpx.get(
            f"http://127.0.0.1:{admin_port}/metrics",
            headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        ).text
        buckets = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "otelml_feature_value_bucket":
                    buckets[float(sample.labels["le"])] = sample.value
                if sample.name == "otelml_receiver_accepted_spans_total" and (
                    sample.labels["transport"] == "grpc"
                ):
                    assert sample.value == len(sent)
        edges = np.asarray(default_edges())
        expected = np.cumsum(
            np.bincount(np.searchsorted(edges, sent, side="left"), minlength=len(edges) + 1)
        )
        assert [buckets[float(e)] for e in edges] + [buckets[float("inf")]] == expected.tolist()
        # The UI's API reads the same merged state, and the request samples of both workers.
        series = httpx.get(
            f"http://127.0.0.1:{admin_port}/api/v1/series",
            params={"name": "w", "version": "", "role": "feature", "series": "x"},
        ).json()
        assert series["current"] == "since_start"
        counts = np.diff(np.r_[0, expected])
        assert {b["index"]: b["current"] for b in series["buckets"]} == {
            i: int(c)
            for i, c in enumerate(counts)
            if series["buckets"][0]["index"] <= i and i <= series["buckets"][-1]["index"]
        }
        samples = [s for b in series["buckets"] for s in b["samples"]]
        assert len(samples) >= 2 and all(s["value"] in sent for s in samples)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        gateway.kill()
