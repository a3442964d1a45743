"""A real FastAPI app with a real scikit-learn model, instrumented in one call, served by
uvicorn and driven over HTTP: the gateway's distributions are exactly what was sent, and the
forwarded logs share trace ids with the forwarded spans."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

from otelml import profile
from tests.conftest import forwarding_config, running_gateway
from tests.instrument.test_record_end_to_end import cumulative, wait_for
from tests.sinks import GrpcSink

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reference(tmp_path: Path) -> Path:
    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=dict(zip(iris.feature_names, FEATURES, strict=True)))
    frame["species"] = np.asarray(iris.target_names)[frame.pop("target")]
    frame["channel"] = "web"
    path = tmp_path / "iris.json"
    profile.save(profile.build(frame, model="iris", version="1", predictions=["species"]), path)
    return path


def _traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def test_fastapi_app_features_predictions_and_log_trace_links(tmp_path: Path) -> None:
    reference = _reference(tmp_path)
    sink = GrpcSink()
    config = forwarding_config(
        sink.endpoint,
        tmp_path / "queue",
        models=[{"name": "iris", "version": "1", "reference": str(reference)}],
    )
    rng = np.random.default_rng(3)
    sent = pd.DataFrame(
        {
            "sepal_length": rng.normal(5.8, 0.8, 60),
            "sepal_width": rng.normal(3.0, 0.4, 60),
            "petal_length": rng.normal(3.7, 1.7, 60),
            "petal_width": rng.normal(1.2, 0.7, 60),
        }
    )
    try:
        with running_gateway(config) as gw:
            port = _free_port()
            app = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "tests.instrument.apps.fastapi_app:app"),
                    *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
                ],
                env={
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{gw.grpc_endpoint}",
                    "OTEL_BSP_SCHEDULE_DELAY": "200",
                },
                stderr=subprocess.PIPE,
                text=True,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                wait_for(lambda: _up(base), timeout=60)
                traces: list[str] = []
                species: list[str] = []
                with httpx.Client(base_url=base, timeout=10) as client:
                    for i, row in enumerate(sent.to_dict("records")):
                        if i % 10 == 0:
                            row["petal_width"] = None  # missing
                            sent.loc[i, "petal_width"] = np.nan
                        trace_id, header = _traceparent()
                        response = client.post(
                            "/predict",
                            json={**row, "request_tag": f"r{i}"},
                            headers={"traceparent": header},
                        )
                        assert response.status_code == 200, response.text
                        species.append(response.json()["species"])
                        traces.append(trace_id)
                    batch_rows = sent.iloc[:30].copy()
                    for start in range(0, 30, 6):
                        rows = batch_rows.iloc[start : start + 6]
                        instances = [
                            {k: (None if pd.isna(v) else v) for k, v in r.items()}
                            for r in rows.to_dict("records")
                        ]
                        trace_id, header = _traceparent()
                        response = client.post(
                            "/predict_batch",
                            json={"instances": instances, "channel": "app"},
                            headers={"traceparent": header},
                        )
                        assert response.status_code == 200, response.text
                        species += response.json()["species"]
                        traces.append(trace_id)
                    # Invalid bodies are FastAPI's 422 before the handler: nothing recorded.
                    assert client.post("/predict", json={"sepal_length": "x"}).status_code == 422
                    assert client.post("/late", json=instances[0]).json()["species"] == "late"
            finally:
                app.send_signal(signal.SIGTERM)  # uvicorn stops; the SDK flushes at exit
                _, stderr = app.communicate(timeout=30)
            assert app.returncode in (0, -signal.SIGTERM), stderr  # uvicorn re-raises it
            samples = gw.samples()
    finally:
        sink.stop()

    all_rows = pd.concat([sent, sent.iloc[:30]], ignore_index=True)
    sepal_length = profile.load(reference).features["sepal_length"]
    assert isinstance(sepal_length, profile.NumericProfile)
    edges = sepal_length.edges

    def series(name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        want = {("model", "iris"), ("model_version", "1"), *labels.items()}
        return {lbl: s.value for (n, lbl), s in samples.items() if n == name and want <= lbl}

    buckets = sorted(
        (float(dict(k)["le"]), v)
        for k, v in series("otelml_feature_value_bucket", feature="sepal_length").items()
    )
    late_row = instances[0]["sepal_length"]
    assert [v for _, v in buckets] == cumulative(edges, [*all_rows["sepal_length"], late_row])
    (missing,) = series("otelml_feature_missing_total", feature="petal_width").values()
    assert missing == 6 + 3  # rows 0, 10, …, 50 alone; rows 0, 10, 20 again in batches
    channel = {
        dict(k)["category"]: v
        for k, v in series("otelml_feature_category_total", feature="channel").items()
    }
    assert channel == {"web": 0, "__other__": 30}  # "app" is not among the reference categories
    assert not series("otelml_feature_value_bucket", feature="request_tag")
    predicted = {
        dict(k)["class"]: v
        for k, v in series("otelml_prediction_class_total", output="species").items()
        if v
    }
    expected = {k: float(v) for k, v in pd.Series(species).value_counts().items()}
    assert predicted == {**expected, "__other__": 1.0}  # "late" is no reference class

    span_traces = {t for t, _ in sink.spans}
    log_traces = [t for t, _, body in sink.log_records if body.startswith("predicted")]
    assert set(traces) <= span_traces  # the client's trace context was continued
    assert len(log_traces) == 65 and set(log_traces) == set(traces)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
