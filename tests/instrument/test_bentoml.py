"""The BentoML example, served by `bentoml serve` in its own environment and driven over HTTP.

The gateway's distributions are exactly the features sent and the progression returned, through a
plain API and a batchable one (concurrent requests BentoML merges into one model call), each
request's rows on that request's own span; the last spans survive the shutdown; and the
`bentoml.monitor` OTLP log records reach the gateway and are forwarded as they are. Run against
BentoML 1.4 with today's OpenTelemetry SDK and with the floor of BentoML's range (SDK 1.20).

The readers of `otelml.instrument.bentoml` (inputs and outputs → `record` arguments) are tested
on plain pydantic models below: they need no BentoML.
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from pydantic import BaseModel
from sklearn.datasets import load_diabetes

from otelml import profile, semconv
from otelml.instrument import bentoml as otelml_bentoml
from tests.conftest import forwarding_config, running_gateway
from tests.environments import example_reference, require
from tests.install.matrix import ROWS
from tests.instrument.test_record_end_to_end import cumulative, wait_for
from tests.prometheus_server import free_port
from tests.sinks import GrpcSink

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bentoml_service"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
#: environment → the install matrix's row (tests/install/matrix.py) it is
ENVIRONMENTS = {
    "sdk-current": ROWS["bentoml"].venv,
    "sdk-1.20": ROWS["bentoml-floor"].venv,
}


class Sink(GrpcSink):
    """The Tempo and Loki stand-in, keeping every request it accepted, by signal."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.logs: list[ExportLogsServiceRequest] = []
        super().__init__()

    def add_traces(self, request: ExportTraceServiceRequest) -> None:
        super().add_traces(request)
        self.traces.append(request)

    def add_logs(self, request: ExportLogsServiceRequest) -> None:
        super().add_logs(request)
        self.logs.append(request)


def bento_environment(name: str) -> Path:
    """The example's environment: its requirements and otelml's wheel, installed by pip."""
    venv = ENVIRONMENTS[name]
    require(venv / "bin" / "python", "make app-venvs")
    return venv


def _traceparent() -> tuple[str, dict[str, str]]:
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def _rows(rng: np.random.Generator, count: int) -> list[dict[str, float | int]]:
    """Patients near the training data's: numeric features jittered, sex as it was."""
    data = load_diabetes(scaled=False).data
    picked = data[rng.integers(0, len(data), count)]
    jittered = picked * rng.normal(1, 0.02, picked.shape)
    return [
        {f: int(p[i]) if f == "sex" else round(float(j[i]), 2) for i, f in enumerate(FEATURES)}
        for p, j in zip(picked, jittered, strict=True)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("environment", list(ENVIRONMENTS))
def test_bentoml_service_features_predictions_and_monitor_records(
    tmp_path: Path, environment: str
) -> None:
    venv = bento_environment(environment)
    reference = example_reference(tmp_path)
    sink = Sink()
    config = forwarding_config(
        sink.endpoint,
        tmp_path / "queue",
        models=[{"name": "diabetes", "version": "1", "reference": str(reference)}],
    )
    rng = np.random.default_rng(7)
    single = _rows(rng, 30)
    batches = [_rows(rng, int(n)) for n in rng.integers(1, 6, 48)]
    sent: dict[str, tuple[list[dict[str, float | int]], list[float]]] = {}  # trace → rows, outputs
    try:
        with running_gateway(config) as gw:
            port = free_port()
            server = _serve(venv, tmp_path, port, gateway=f"http://{gw.grpc_endpoint}")
            base = f"http://127.0.0.1:{port}"
            try:
                wait_for(lambda: _ready(base), timeout=180)
                with httpx.Client(base_url=base, timeout=30) as client:
                    for row in single:
                        trace_id, headers = _traceparent()
                        response = client.post("/predict", json=row, headers=headers)
                        assert response.status_code == 200, response.text
                        sent[trace_id] = ([row], [response.json()])
                    # Invalid input is BentoML's 400 before the API runs: nothing recorded.
                    invalid = client.post("/predict", json={**single[0], "age": "x"})
                    assert invalid.status_code == 400

                def predict_batch(rows: list[dict[str, float | int]]) -> None:
                    trace_id, headers = _traceparent()
                    response = httpx.post(
                        f"{base}/predict_batch",
                        json={"patients": rows},
                        headers=headers,
                        timeout=30,
                    )
                    assert response.status_code == 200, response.text
                    sent[trace_id] = (rows, response.json())

                with concurrent.futures.ThreadPoolExecutor(12) as pool:
                    list(pool.map(predict_batch, batches))
                merged = _merged_model_calls(base)
            finally:
                output = _stop(server)
            assert server.returncode == 0, output
            assert "Completed cleanup hook: _otelml_flush_on_shutdown" in output
            rows = [r for rs, _ in sent.values() for r in rs]
            wait_for(lambda: _count(gw, "bmi") == len(rows))
            samples = gw.samples()
    finally:
        sink.stop()

    def series(name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        want = {("model", "diabetes"), ("model_version", "1"), *labels.items()}
        return {lbl: s.value for (n, lbl), s in samples.items() if n == name and want <= lbl}

    def buckets(name: str, **labels: str) -> list[float]:
        return [
            v
            for _, v in sorted((float(dict(k)["le"]), v) for k, v in series(name, **labels).items())
        ]

    loaded = profile.load(reference)
    for feature in FEATURES:
        if feature == "sex":
            continue
        numeric = loaded.features[feature]
        assert isinstance(numeric, profile.NumericProfile)
        values = [float(r[feature]) for r in rows]
        got = buckets("otelml_feature_value_bucket", feature=feature)
        assert got == cumulative(list(numeric.edges), values), feature
    categories = {
        dict(k)["category"]: v
        for k, v in series("otelml_feature_category_total", feature="sex").items()
    }
    sexes = Counter(str(r["sex"]) for r in rows)
    assert categories == {"1": sexes["1"], "2": sexes["2"]}  # no `__other__` while none fell there
    outputs = [v for _, values in sent.values() for v in values]
    prediction = loaded.predictions["progression"]
    assert isinstance(prediction, profile.NumericProfile)
    got = buckets("otelml_prediction_value_bucket", output="progression")
    assert got == cumulative(list(prediction.edges), outputs)

    # Each request's rows and outputs are on its own span, batched or not.
    spans = _ml_spans(sink)
    assert set(sent) <= set(spans)
    for trace_id, (sent_rows, sent_outputs) in sent.items():
        attributes = spans[trace_id]
        got = attributes[semconv.FEATURE_PREFIX + "bmi"]
        assert (got if isinstance(got, list) else [got]) == [r["bmi"] for r in sent_rows]
        got = attributes[semconv.PREDICTION_PREFIX + "progression"]
        assert (got if isinstance(got, list) else [got]) == sent_outputs
    assert merged >= 1, merged  # at least one model call served several requests

    # bentoml.monitor: one OTLP log record per /predict call, accepted and forwarded as is;
    # its body's decimal trace id is the record's own (hex) trace id.
    accepted = sum(
        sample.value
        for (name, _), sample in samples.items()
        if name == "otelml_receiver_accepted_log_records_total"
    )
    assert accepted == len(single)
    monitored = _monitor_records(sink)
    assert len(monitored) == len(single)
    for record_trace_id, logged in monitored:
        assert format(int(logged["trace_id"]), "032x") == record_trace_id
        request_rows, request_outputs = sent[record_trace_id]
        assert logged["bmi"] == request_rows[0]["bmi"]
        assert logged["progression"] == request_outputs[0]
        assert logged["bento_meta"]["schema"]["progression"]["role"] == "prediction"
    # ... and read by the gateway as the model named after the monitor.
    monitor = {("model", "diabetes_monitor"), ("model_version", "")}

    def monitor_series(name: str, **labels: str) -> float:
        want = monitor | set(labels.items())
        return float(sum(s.value for (n, lbl), s in samples.items() if n == name and want <= lbl))

    bmi_count = monitor_series("otelml_feature_value_bucket", feature="bmi", le="+Inf")
    assert bmi_count == len(single)
    sex_count = monitor_series("otelml_feature_value_bucket", feature="sex", le="+Inf")
    assert sex_count == len(single)  # a number in the record: no reference says categorical
    assert samples[
        ("otelml_bentoml_monitor_records_total", frozenset({("outcome", "read")}))
    ].value == len(single)


@pytest.mark.slow
def test_an_unreachable_gateway_costs_telemetry_never_a_request(tmp_path: Path) -> None:
    venv = bento_environment("sdk-current")
    port = free_port()
    server = _serve(venv, tmp_path, port, gateway=f"http://127.0.0.1:{free_port()}")  # nobody
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), timeout=180)
        with httpx.Client(base_url=base, timeout=30) as client:
            for row in _rows(np.random.default_rng(1), 20):
                assert client.post("/predict", json=row).status_code == 200
                assert client.post("/predict_batch", json={"patients": [row]}).status_code == 200
    finally:
        started = time.monotonic()
        output = _stop(server)
    assert server.returncode == 0, output
    assert time.monotonic() - started < 30  # the flush at shutdown gives up after its budget
    assert "Transient error" in output or "Failed to export" in output  # said in the log only


def _serve(
    venv: Path, tmp_path: Path, port: int, gateway: str, log: Path | None = None
) -> subprocess.Popen[str]:
    """`bentoml serve` of the example, as its README runs it; its output kept for `_stop`, or
    written to `log` (under load: an unread pipe fills up and stalls the server)."""
    if log is not None:
        with log.open("w") as output:  # the child keeps its own descriptor
            return _bentoml_serve(venv, tmp_path, port, gateway, output)
    return _bentoml_serve(venv, tmp_path, port, gateway, subprocess.PIPE)


def _bentoml_serve(
    venv: Path, tmp_path: Path, port: int, gateway: str, stdout: Any
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(str(venv / "bin" / "bentoml"), "serve", "service:DiabetesRegressor"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=EXAMPLE,
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # otelml: the venv's
            "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
            "BENTOML_CONFIG": str(EXAMPLE / "bentoml_configuration.yaml"),
            "BENTOML_HOME": str(tmp_path / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "true",
            "OTELML_GATEWAY": gateway,
        },
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the workers go with it if it hangs
    )


def _stop(server: subprocess.Popen[str]) -> str:
    """SIGTERM, as an orchestrator stops it (BentoML stops its workers gracefully)."""
    server.send_signal(signal.SIGTERM)
    try:
        output, _ = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        output, _ = server.communicate(timeout=10)
        raise AssertionError(f"bentoml serve did not stop in 60 s:\n{output}") from None
    return output


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _count(gw: Any, feature: str) -> float:
    want = {("model", "diabetes"), ("feature", feature), ("le", "+Inf")}
    return float(
        sum(
            sample.value
            for (name, labels), sample in gw.samples().items()
            if name == "otelml_feature_value_bucket" and want <= labels
        )
    )


def _merged_model_calls(base: str) -> int:
    """Model calls that served more than one request (BentoML's adaptive batching histogram)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    total = calls = 0.0
    for line in text.splitlines():
        if line.startswith("bentoml_service_adaptive_batch_size_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("bentoml_service_adaptive_batch_size_count"):
            calls += float(line.rsplit(" ", 1)[1])
    return int(total - calls)  # ≥ the number of calls that merged requests


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return None if which is None else getattr(value, which)


def _ml_spans(sink: Sink) -> dict[str, dict[str, Any]]:
    """trace id → `ml.*` attributes of the span in that trace that carries them."""
    out: dict[str, dict[str, Any]] = {}
    for request in sink.traces:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    ml = {
                        a.key: _value(a.value)
                        for a in span.attributes
                        if a.key.startswith(semconv.ML_PREFIX)
                    }
                    if ml:
                        assert span.trace_id.hex() not in out, "one recording span per request"
                        out[span.trace_id.hex()] = ml
    return out


def _monitor_records(sink: Sink) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for request in sink.logs:
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    body = _value(record.body)
                    if isinstance(body, dict) and "bento_meta" in body:
                        out.append((record.trace_id.hex(), body))
    return out


# --- the readers, without BentoML ---------------------------------------------------------


class Flower(BaseModel):
    sepal_length: float
    petal_width: float | None = None


class Named(BaseModel):
    sepal_length: float
    petal_width: float | None = None
    tag: str = ""


class ArrayInput(BaseModel):
    rows: Any


class RowsInput(BaseModel):
    flowers: list[Flower]
    channel: str = "web"


class Scored(BaseModel):
    species: str
    confidence: float


def _options(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "api": "classify",
        "model": "iris",
        "version": "1",
        "features": None,
        "feature_names": None,
        "predictions": None,
        "output": None,
    }
    values.update(overrides)
    return otelml_bentoml._Options(**values)


def test_named_parameters_are_one_row_and_can_be_picked() -> None:
    data = Named(sepal_length=5.1, tag="a")
    assert otelml_bentoml._features(_options(), Named, data) == {
        "sepal_length": 5.1,
        "petal_width": None,
        "tag": "a",
    }
    picked = _options(features=["sepal_length", "petal_width"])
    assert otelml_bentoml._features(picked, Named, data) == {
        "sepal_length": 5.1,
        "petal_width": None,
    }


def test_an_array_parameter_with_feature_names_is_the_feature_set() -> None:
    array = np.asarray([[5.1, 0.2], [6.0, 1.5]])
    options = _options(feature_names=["sepal_length", "petal_width"])
    assert otelml_bentoml._features(options, ArrayInput, ArrayInput(rows=array)) is array


def test_a_list_of_rows_becomes_columns_with_the_other_values_for_every_row() -> None:
    data = RowsInput(flowers=[Flower(sepal_length=5.1), Flower(sepal_length=6.0, petal_width=1.5)])
    assert otelml_bentoml._features(_options(), RowsInput, data) == {
        "sepal_length": [5.1, 6.0],
        "petal_width": [None, 1.5],
        "channel": "web",
    }


def test_outputs_bare_named_structured_and_rows() -> None:
    assert otelml_bentoml._prediction(_options(), "setosa") == "setosa"
    assert otelml_bentoml._prediction(_options(output="species"), ["a", "b"]) == {
        "species": ["a", "b"]
    }
    scored = Scored(species="setosa", confidence=0.9)
    assert otelml_bentoml._prediction(_options(predictions=["species"]), scored) == {
        "species": "setosa"
    }
    rows = [scored, Scored(species="virginica", confidence=0.6)]
    assert otelml_bentoml._prediction(_options(), rows) == {
        "species": ["setosa", "virginica"],
        "confidence": [0.9, 0.6],
    }
    frame = pd.DataFrame({"species": ["a"], "confidence": [0.5]})
    assert list(otelml_bentoml._prediction(_options(predictions=["species"]), frame)) == ["species"]


def test_recording_never_raises_and_counts_why(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    before = otelml_bentoml.stats()
    bad = _options(feature_names=["only_one"])  # two columns, one name
    with tracer.start_as_current_span("request"):
        for _ in range(3):
            otelml_bentoml._record(bad, ArrayInput, ArrayInput(rows=np.ones((2, 2))), ["a", "b"])
    otelml_bentoml._record(_options(), Named, Named(sepal_length=1.0), "a")  # no span: sampled out
    after = otelml_bentoml.stats()
    assert after.get("failed:ValueError", 0) - before.get("failed:ValueError", 0) == 3
    assert after.get("not_recorded:not_sampled", 0) - before.get("not_recorded:not_sampled", 0) == 1
    assert sum("could not record" in r.getMessage() for r in caplog.records) <= 1


def test_record_api_must_sit_above_bentoml_api() -> None:
    with pytest.raises(TypeError, match=r"above @bentoml\.api"):
        otelml_bentoml.record_api(model="iris")(lambda self, x: x)
