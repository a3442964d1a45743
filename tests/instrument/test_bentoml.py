"""The BentoML example, served by `bentoml serve` in its own environment and driven over HTTP.

The gateway's distributions are exactly the features sent and the species returned, through a
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
import sys
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
from sklearn.datasets import load_iris  # type: ignore[import-untyped]

from otelml import profile, semconv
from otelml.instrument import bentoml as otelml_bentoml
from tests.conftest import forwarding_config, running_gateway
from tests.instrument.test_record_end_to_end import cumulative, wait_for
from tests.prometheus_server import free_port
from tests.sinks import GrpcSink

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bentoml_service"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
#: environment → (its directory, its requirements file)
ENVIRONMENTS = {
    "sdk-current": (ROOT / ".venv-bentoml", EXAMPLE / "requirements.txt"),
    "sdk-1.20": (ROOT / ".venv-bentoml-floor", EXAMPLE / "requirements-floor.txt"),
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
    """The example's environment, made by its own script (reused when up to date)."""
    venv, requirements = ENVIRONMENTS[name]
    try:
        subprocess.run(
            ["sh", str(EXAMPLE / "venv.sh"), str(venv), str(requirements)],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        output = getattr(error, "stderr", "") or ""
        message = (
            f"the BentoML environment {venv.name} could not be made: {error}\n{output[-2000:]}"
        )
        if any(os.environ.get(v) for v in ("CI", "OTELML_REQUIRE_ALL", "OTELML_REQUIRE_NATIVE")):
            pytest.fail(message)
        pytest.skip(message)
    return venv


def _reference(tmp_path: Path) -> Path:
    """The example's own reference profile (its reference.py, as its README runs it)."""
    path = tmp_path / "iris.json"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "reference.py"), str(path)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    return path


def _traceparent() -> tuple[str, dict[str, str]]:
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def _rows(rng: np.random.Generator, count: int) -> list[list[float | None]]:
    iris = load_iris()
    picked = iris.data[rng.integers(0, len(iris.data), count)]
    return (picked + rng.normal(0, 0.2, picked.shape)).round(2).tolist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("environment", list(ENVIRONMENTS))
def test_bentoml_service_features_predictions_and_monitor_records(
    tmp_path: Path, environment: str
) -> None:
    venv = bento_environment(environment)
    reference = _reference(tmp_path)
    sink = Sink()
    config = forwarding_config(
        sink.endpoint,
        tmp_path / "queue",
        models=[{"name": "iris", "version": "1", "reference": str(reference)}],
    )
    rng = np.random.default_rng(7)
    single = _rows(rng, 30)
    for i in range(0, 30, 10):
        single[i][3] = None  # petal_width missing: the field is left out of the request
    batches = [_rows(rng, int(n)) for n in rng.integers(1, 6, 48)]
    for i in range(0, 48, 16):
        batches[i][0][3] = None  # a null in the array: NaN for the model, missing for otelml
    sent: dict[str, tuple[list[list[float | None]], list[str]]] = {}  # trace → rows, species
    try:
        with running_gateway(config) as gw:
            port = free_port()
            server = _serve(venv, tmp_path, port, gateway=f"http://{gw.grpc_endpoint}")
            base = f"http://127.0.0.1:{port}"
            try:
                wait_for(lambda: _ready(base), timeout=180)
                with httpx.Client(base_url=base, timeout=30) as client:
                    for row in single:
                        body = {n: v for n, v in zip(FEATURES, row, strict=True) if v is not None}
                        trace_id, headers = _traceparent()
                        response = client.post("/classify", json=body, headers=headers)
                        assert response.status_code == 200, response.text
                        sent[trace_id] = ([row], [response.text])
                    # Invalid input is BentoML's 400 before the API runs: nothing recorded.
                    invalid = client.post("/classify", json={"sepal_length": "x"})
                    assert invalid.status_code == 400

                def classify_batch(rows: list[list[float | None]]) -> None:
                    trace_id, headers = _traceparent()
                    response = httpx.post(
                        f"{base}/classify_batch", json={"rows": rows}, headers=headers, timeout=30
                    )
                    assert response.status_code == 200, response.text
                    sent[trace_id] = (rows, response.json())

                with concurrent.futures.ThreadPoolExecutor(12) as pool:
                    list(pool.map(classify_batch, batches))
                merged = _merged_model_calls(base)
            finally:
                output = _stop(server)
            assert server.returncode == 0, output
            assert "Completed cleanup hook: _otelml_flush_on_shutdown" in output
            rows = [r for rs, _ in sent.values() for r in rs]
            wait_for(lambda: _count(gw, "sepal_length") == len(rows))
            samples = gw.samples()
    finally:
        sink.stop()

    def series(name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        want = {("model", "iris"), ("model_version", "1"), *labels.items()}
        return {lbl: s.value for (n, lbl), s in samples.items() if n == name and want <= lbl}

    features = profile.load(reference).features
    for index, feature in enumerate(FEATURES):
        numeric = features[feature]
        assert isinstance(numeric, profile.NumericProfile)
        buckets = sorted(
            (float(dict(k)["le"]), v)
            for k, v in series("otelml_feature_value_bucket", feature=feature).items()
        )
        values: list[float] = [np.nan if r[index] is None else r[index] for r in rows]  # type: ignore[misc]
        assert [v for _, v in buckets] == cumulative(list(numeric.edges), values), feature
    (missing,) = series("otelml_feature_missing_total", feature="petal_width").values()
    assert missing == 3 + 3
    predicted = {
        dict(k)["class"]: v
        for k, v in series("otelml_prediction_class_total", output="species").items()
        if v
    }
    species = Counter(label for _, labels in sent.values() for label in labels)
    assert predicted == {k: float(v) for k, v in species.items()}

    # Each request's rows and species are on its own span, batched or not.
    spans = _ml_spans(sink)
    assert set(sent) <= set(spans)
    for trace_id, (sent_rows, sent_species) in sent.items():
        attributes = spans[trace_id]
        got = attributes[semconv.FEATURE_PREFIX + "sepal_length"]
        want = [r[0] for r in sent_rows]
        assert (got if isinstance(got, list) else [got]) == want
        got = attributes[semconv.PREDICTION_PREFIX + "species"]
        assert (got if isinstance(got, list) else [got]) == sent_species
    assert merged >= 1, merged  # at least one model call served several requests

    # bentoml.monitor: one OTLP log record per /classify call, accepted and forwarded as is;
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
        request_rows, request_species = sent[record_trace_id]
        assert logged["sepal_length"] == request_rows[0][0]
        assert logged["species"] == request_species[0]
        assert logged["bento_meta"]["schema"]["species"]["role"] == "prediction"
    # ... and read by the gateway as the model named after the monitor.
    monitor = {("model", "iris_monitor"), ("model_version", "")}

    def monitor_series(name: str, **labels: str) -> float:
        want = monitor | set(labels.items())
        (value,) = [s.value for (n, lbl), s in samples.items() if n == name and want <= lbl]
        return float(value)

    assert monitor_series("otelml_feature_value_bucket", feature="sepal_length", le="+Inf") == len(
        single
    )
    assert monitor_series("otelml_feature_missing_total", feature="petal_width") == 3
    assert samples[
        ("otelml_bentoml_monitor_records_total", frozenset({("outcome", "read")}))
    ].value == len(single)


def test_an_unreachable_gateway_costs_telemetry_never_a_request(tmp_path: Path) -> None:
    venv = bento_environment("sdk-current")
    port = free_port()
    server = _serve(venv, tmp_path, port, gateway=f"http://127.0.0.1:{free_port()}")  # nobody
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), timeout=180)
        with httpx.Client(base_url=base, timeout=30) as client:
            for row in _rows(np.random.default_rng(1), 20):
                body = dict(zip(FEATURES, row, strict=True))
                assert client.post("/classify", json=body).status_code == 200
                assert client.post("/classify_batch", json={"rows": [row]}).status_code == 200
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
            *(str(venv / "bin" / "bentoml"), "serve", "service:IrisClassifier"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=EXAMPLE,
        env={
            **os.environ,
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
    want = {("model", "iris"), ("feature", feature), ("le", "+Inf")}
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
