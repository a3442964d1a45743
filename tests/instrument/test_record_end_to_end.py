"""`configure` + `record` in a real process → real gateway → exact distributions, joined
ground truth, and logs that share trace ids with the spans (as Tempo and Loki receive them)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from otelml import profile
from tests.conftest import forwarding_config, running_gateway
from tests.environments import SDK_FLOOR, require
from tests.sinks import GrpcSink

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "instrument" / "apps" / "record_script.py"


def reference(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 3000),
            "plan": rng.choice(["free", "pro", "team"], 3000),
            "prediction": rng.uniform(size=3000),
        }
    )
    path = tmp_path / "reference.json"
    profile.save(profile.build(frame, model="churn", version="3", predictions=["prediction"]), path)
    return path


def cumulative(edges: Sequence[float], values: Sequence[float | None]) -> list[int]:
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=len(edges) + 1)
    return [int(c) for c in np.cumsum(counts)]


def wait_for(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("protocol", "sdk"),
    [
        ("grpc", "current"),
        ("http/protobuf", "current"),
        ("grpc", "1.20"),
        ("http/protobuf", "1.20"),
        ("grpc", "opentelemetry-instrument"),  # providers already set up by the agent
    ],
)
def test_record_script_reaches_the_gateway_exactly(tmp_path: Path, protocol: str, sdk: str) -> None:
    python = sys.executable if sdk != "1.20" else require(SDK_FLOOR, "make app-venvs")
    ref = reference(tmp_path)
    age = profile.load(ref).features["age"]
    assert isinstance(age, profile.NumericProfile)
    edges = age.edges
    sink = GrpcSink()
    config = forwarding_config(
        sink.endpoint,
        tmp_path / "queue",
        models=[
            {"name": "churn", "version": "3", "reference": str(ref), "ground_truth": {"ttl": "5m"}}
        ],
    )
    try:
        with running_gateway(config) as gw:
            endpoint = f"http://{gw.grpc_endpoint}" if protocol == "grpc" else gw.http_url
            env = {
                **os.environ,
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            }
            env.pop("PYTHONPATH", None)  # otelml comes from the environment's own install
            command = [python, str(SCRIPT), "11"]
            if sdk == "opentelemetry-instrument":
                command = [str(Path(sys.executable).parent / "opentelemetry-instrument"), *command]
                env.update(
                    OTEL_TRACES_EXPORTER="otlp",
                    OTEL_LOGS_EXPORTER="otlp",
                    OTEL_METRICS_EXPORTER="none",
                    OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
                    OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT="1000",  # for the wide record
                    OTEL_SERVICE_NAME="record-script",
                )
            run = subprocess.run(
                command,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            sent = json.loads(run.stdout)
            samples = gw.samples()

            def value(name: str, **labels: str) -> float:
                key = (name, frozenset({"model": "churn", "model_version": "3", **labels}.items()))
                return float(samples[key].value)

            buckets = sorted(
                (float(dict(labels)["le"]), s.value)
                for (name, labels), s in samples.items()
                if name == "otelml_feature_value_bucket"
                and {("model", "churn"), ("feature", "age")} <= labels
            )
            assert [le for le, _ in buckets[:-1]] == pytest.approx(edges)
            assert [count for _, count in buckets] == cumulative(edges, sent["age"])
            missing_age = sum(1 for v in sent["age"] if not math.isfinite(v))
            assert missing_age == 10
            assert value("otelml_feature_missing_total", feature="age") == missing_age
            for plan in ("free", "pro", "team"):
                assert value(
                    "otelml_feature_category_total", feature="plan", category=plan
                ) == sent["plan"].count(plan)
            # SDK 1.20's encoder cannot send a null array element: a missing string goes as "",
            # which is no reference category; `__other__` is exposed only where something is.
            missing_plan = 0 if sdk == "1.20" else 10
            assert value("otelml_feature_missing_total", feature="plan") == missing_plan
            labels = {"model": "churn", "model_version": "3", "feature": "plan"}
            other_key = (
                "otelml_feature_category_total",
                frozenset({**labels, "category": "__other__"}.items()),
            )
            if sdk == "1.20":
                assert float(samples[other_key].value) == 10
            else:
                assert other_key not in samples
            assert value("otelml_prediction_value_bucket", output="prediction", le="+Inf") == len(
                sent["score"]
            )

            # The wide record went out as a log record: each of its 140 features counted once.
            wide = {
                labels: s.value
                for (name, labels), s in samples.items()
                if name == "otelml_feature_value_bucket"
                and {("model", "wide"), ("le", "+Inf")} <= labels
            }
            assert len(wide) == 140 and set(wide.values()) == {1.0}

            # Ground truth joined by the ids record() returned: MAE of score vs score + 0.1.
            wait_for(lambda: _performance(gw, "mae") is not None)
            assert _performance(gw, "mae") == pytest.approx(0.1, abs=1e-6)
            assert value("otelml_ground_truth_total", output="prediction") == 30

            # Forwarded as received: every log line's trace id is one of the spans' trace ids.
            wait_for(lambda: len(sink.log_records) >= 51)
            span_traces = {trace_id for trace_id, _ in sink.spans}
            assert set(sent["traces"]) <= span_traces
            scored = [r for r in sink.log_records if r[2].startswith("scored")]
            assert len(scored) == 50
            assert {r[0] for r in scored} <= set(sent["traces"])
            assert sent["wide_trace"] in {r[0] for r in sink.log_records}
            warning = "do not fit the span's attribute limit"
            if sdk == "opentelemetry-instrument":  # the agent's handler owns the root logger
                assert sum(warning in r[2] for r in sink.log_records) == 1
            else:  # said once, and plain-text lines carry the trace id for text shippers
                assert run.stderr.count(warning) == 1
                for trace_id in sent["traces"][:3]:
                    assert f"trace_id={trace_id}" in run.stderr
    finally:
        sink.stop()


def _performance(gw, metric: str) -> float | None:  # type: ignore[no-untyped-def]
    labels = frozenset(
        {"model": "churn", "model_version": "3", "output": "prediction", "metric": metric}.items()
    )
    sample = gw.samples().get(("otelml_performance", labels))
    return None if sample is None else float(sample.value)
