"""`workers: 2`: two processes behind shared ports, one merged /metrics, clean SIGTERM."""

from __future__ import annotations

import signal
import time
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


def test_two_workers_keep_the_performance_history_of_their_joins(tmp_path: Path) -> None:
    """The parent records the merged joins of every worker once per step (it joins nothing)."""
    gateway = GatewayProcess.configure(
        tmp_path,
        "workers: 2\nmodels:\n  - {name: clf, version: '1', window: 2s, step: 1s,"
        " ground_truth: {ttl: 1h}}\n",
    )
    try:
        process = gateway.start()
        predicted = ["yes", "no", "yes", "yes", "no", "no"]
        truth = ["yes", "no", "no", "yes", "no", "yes"]  # 4 of 6 right
        for batch in range(2):  # one channel per batch: each may land on another worker
            rows = range(3 * batch, 3 * batch + 3)
            spans = [
                {
                    semconv.MODEL_NAME: "clf",
                    semconv.MODEL_VERSION: "1",
                    semconv.PREDICTION_ID: f"p{i}",
                    semconv.PREDICTION: predicted[i],
                }
                for i in rows
            ] + [{semconv.PREDICTION_ID: f"p{i}", semconv.GROUND_TRUTH: truth[i]} for i in rows]
            with grpc.insecure_channel(gateway.grpc_endpoint) as channel:
                export = channel.unary_unary(EXPORT, request_serializer=None)
                export(traces(spans, first_trace=1 + 100 * batch), timeout=10)
        deadline = time.monotonic() + 30
        while True:
            detail = httpx.get(
                f"{gateway.admin_url}/api/v1/model", params={"name": "clf", "version": "1"}
            ).json()
            (performance,) = detail["performance"]
            if performance["history"] and performance["history"][-1]["labels"] == 6:
                break
            assert time.monotonic() < deadline, performance
            time.sleep(0.3)
        assert performance["output"] == "prediction"
        assert performance["history"][-1]["metrics"]["accuracy"] == 4 / 6
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        gateway.kill()
