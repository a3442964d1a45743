"""A real FastAPI app with a real scikit-learn model, instrumented in two lines, served by
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
import pytest

from otelml import profile
from tests.conftest import forwarding_config, running_gateway
from tests.environments import example_reference
from tests.instrument.test_record_end_to_end import cumulative, wait_for
from tests.sinks import GrpcSink

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fastapi_service"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


@pytest.mark.slow
def test_fastapi_app_features_predictions_and_log_trace_links(tmp_path: Path) -> None:
    reference = example_reference(tmp_path)
    sink = GrpcSink()
    config = forwarding_config(
        sink.endpoint,
        tmp_path / "queue",
        models=[{"name": "diabetes", "version": "1", "reference": str(reference)}],
    )
    training = pd.read_csv(tmp_path / "training.csv")
    rng = np.random.default_rng(3)
    sent = training.sample(60, random_state=3, replace=True)[FEATURES].reset_index(drop=True)
    sent["bmi"] = (sent["bmi"] + rng.normal(0, 1, 60)).round(2)
    outputs: list[float] = []
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
                rows = [
                    {k: int(v) if k == "sex" else float(v) for k, v in r.items()}
                    for r in sent.to_dict("records")
                ]
                with httpx.Client(base_url=base, timeout=10) as client:
                    for row in rows:
                        trace_id, header = _traceparent()
                        response = client.post(
                            "/predict", json=row, headers={"traceparent": header}
                        )
                        assert response.status_code == 200, response.text
                        outputs.append(response.json()["progression"])
                        traces.append(trace_id)
                    for start in range(0, 30, 6):
                        trace_id, header = _traceparent()
                        response = client.post(
                            "/predict_batch",
                            json={"patients": rows[start : start + 6]},
                            headers={"traceparent": header},
                        )
                        assert response.status_code == 200, response.text
                        outputs += response.json()["progression"]
                        traces.append(trace_id)
                    # Invalid bodies are FastAPI's 422 before the handler: nothing recorded.
                    assert client.post("/predict", json={"age": "x"}).status_code == 422
                    assert client.post("/late", json=rows[0]).json()["progression"] == -1.0
            finally:
                app.send_signal(signal.SIGTERM)  # uvicorn stops; the SDK flushes at exit
                _, stderr = app.communicate(timeout=30)
            assert app.returncode in (0, -signal.SIGTERM), stderr  # uvicorn re-raises it
            samples = gw.samples()
    finally:
        sink.stop()

    all_rows = pd.concat([sent, sent.iloc[:30], sent.iloc[:1]], ignore_index=True)
    loaded = profile.load(reference)

    def series(name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        want = {("model", "diabetes"), ("model_version", "1"), *labels.items()}
        return {lbl: s.value for (n, lbl), s in samples.items() if n == name and want <= lbl}

    def buckets(name: str, **labels: str) -> list[float]:
        pairs = sorted((float(dict(k)["le"]), v) for k, v in series(name, **labels).items())
        return [v for _, v in pairs]

    bmi = loaded.features["bmi"]
    assert isinstance(bmi, profile.NumericProfile)
    got = buckets("otelml_feature_value_bucket", feature="bmi")
    assert got == cumulative(list(bmi.edges), list(all_rows["bmi"]))
    sex = {
        dict(k)["category"]: v
        for k, v in series("otelml_feature_category_total", feature="sex").items()
    }
    expected = all_rows["sex"].astype(str).value_counts()
    assert sex == {"1": expected["1"], "2": expected["2"]}  # no `__other__` while none fell there
    progression = loaded.predictions["progression"]
    assert isinstance(progression, profile.NumericProfile)
    got = buckets("otelml_prediction_value_bucket", output="progression")
    assert got == cumulative(list(progression.edges), [*outputs, -1.0])  # -1: /late

    span_traces = {t for t, _ in sink.spans}
    log_traces = [t for t, _, body in sink.log_records if body.startswith("predicted")]
    assert set(traces) <= span_traces  # the client's trace context was continued
    assert len(log_traces) == 65 and set(log_traces) == set(traces)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
