"""Every PromQL expression of the dashboards and the rules, template variables included, runs
against a real Prometheus scraping real gateways fed with drifting traffic, ground truth,
segments, refusals and a delivery failure — and returns data. Each metric selector must select
series and each label an expression groups or matches by must exist on them, so a name the
gateway does not expose fails here."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelml import profile, semconv
from tests.conftest import RunningGateway, loopback_config, running_gateway
from tests.deploy import queries
from tests.deploy.provisioning import datasources
from tests.gateway.otlp_builders import traces
from tests.prometheus_server import Prometheus, running_prometheus
from tests.sinks import GrpcSink, HttpSink

pytestmark = pytest.mark.slow

TOKEN = "dashboards-test-token"
SERVICE = "churn-svc"
F = semconv.FEATURE_PREFIX
ROWS = 800
REFUSED = 10
CHUNKS = 4
#: Traffic of the second route is where the age drift comes from.
ROUTES = ("/v1/score", "/v2/score")


@dataclass
class Stack:
    prometheus: Prometheus
    main: RunningGateway
    budget: RunningGateway
    trace_ids: set[str]
    scores: np.ndarray[Any, np.dtype[np.float64]]  # the churn score of each request, in order
    variables: dict[str, dict[str, list[str]]]  # dashboard uid → variable → values


def _scores(rng: np.random.Generator, rows: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The churn probability output, in training and in production alike."""
    return rng.beta(2, 5, rows)


def _reference(tmp: Path, rng: np.random.Generator) -> Path:
    training = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 3000),
            "income": rng.lognormal(10, 0.5, 3000),
            "plan": rng.choice(["basic", "plus", "pro"], 3000, p=[0.5, 0.3, 0.2]),
            "country": rng.choice(["DE", "FR", "US"], 3000, p=[0.5, 0.3, 0.2]),
            "prediction": rng.choice(["no", "yes"], 3000, p=[0.8, 0.2]),
            "score": _scores(rng, 3000),
        }
    )
    # A calibrated probability output: its labels follow the score, so the label-free estimate
    # has a calibration to work from.
    training["churned"] = rng.uniform(size=3000) < training["score"]
    path = tmp / "churn-3.json"
    reference = profile.build(
        training, model="churn", version="3", predictions=["prediction", "score"], target="churned"
    )
    profile.save(reference, path)
    return path


def _send_traffic(
    gateway: RunningGateway, rng: np.random.Generator
) -> tuple[set[str], np.ndarray[Any, np.dtype[np.float64]]]:
    """A model service through the official SDK: age drifted on one of two routes, income
    20 % missing and 10 % out of range, unknown plans, 5 % errors, a log line per request, then
    ground truth — for the churn score, truth that contradicts its calibration (concept
    drift)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    resource = Resource.create({"service.name": SERVICE})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{gateway.http_url}/v1/traces", headers=headers),
            max_export_batch_size=100,
        )
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{gateway.http_url}/v1/logs", headers=headers)
        )
    )
    logger = logger_provider.get_logger("churn-svc")
    tracer = tracer_provider.get_tracer("dashboards-test")
    trace_ids: set[str] = set()
    predictions: list[tuple[str, str]] = []
    scores = _scores(rng, ROWS)
    try:
        for i in range(ROWS):
            route = ROUTES[i % 2]
            attributes: dict[str, Any] = {
                semconv.MODEL_NAME: "churn",
                semconv.MODEL_VERSION: "3",
                semconv.PREDICTION_ID: f"p{i}",
                "http.route": route,
                F + "age": float(rng.normal(40 if route == ROUTES[0] else 75, 10)),
                semconv.PREDICTION_PREFIX + "score": float(scores[i]),
                F + "country": str(rng.choice(["DE", "FR", "US"])),
                F + "plan": "enterprise" if i % 20 == 0 else str(rng.choice(["basic", "plus"])),
            }
            if i % 5 != 0:  # every fifth income missing
                attributes[F + "income"] = 1e9 if i % 10 == 1 else float(rng.lognormal(10, 0.5))
            prediction = "yes" if rng.uniform() < 0.5 else "no"
            attributes[semconv.PREDICTION] = prediction
            predictions.append((f"p{i}", prediction))
            with tracer.start_as_current_span(
                "predict", kind=SpanKind.SERVER, attributes=attributes
            ) as span:
                trace_ids.add(format(span.get_span_context().trace_id, "032x"))
                if i % 20 == 7:
                    span.set_status(Status(StatusCode.ERROR, "model failed"))
                if i % 40 == 0:
                    logger.emit(body=f"scored customer {i}", severity_number=SeverityNumber.INFO)
            if i % (ROWS // CHUNKS) == ROWS // CHUNKS - 1:
                # Spread over several scrapes: a counter born with all its counts has no rate.
                assert tracer_provider.force_flush(30_000)
                time.sleep(1.5)
        assert tracer_provider.force_flush(30_000)
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()
    truth: list[dict[str, str | int]] = [
        {"prediction_id": pid, "value": "yes" if j % 3 == 0 else "no"}
        for j, (pid, _) in enumerate(predictions[:400])
    ]
    truth += truth[:5]  # sent twice: counted as unmatched duplicates
    truth += [
        {"prediction_id": f"p{j}", "value": int(scores[j] < 0.3), "output": "score"}
        for j in range(400)
    ]
    response = httpx.post(f"{gateway.http_url}/v1/ground_truth", json=truth, headers=headers)
    assert response.status_code == 200, response.text
    # Refusals the gateway dashboard shows: no token, and a span with an 8-byte trace id.
    unauthenticated = httpx.post(
        f"{gateway.http_url}/v1/traces",
        content=b"",
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert unauthenticated.status_code == 401
    request = trace_service_pb2.ExportTraceServiceRequest()
    bad = request.resource_spans.add().scope_spans.add().spans.add()
    bad.trace_id, bad.span_id, bad.name = b"\x01" * 8, b"\x02" * 8, "bad"
    response = httpx.post(
        f"{gateway.http_url}/v1/traces",
        content=request.SerializeToString(),
        headers={**headers, "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code in (200, 400)
    return trace_ids, scores


def _refused_by_tempo(gateway: RunningGateway, tempo: GrpcSink) -> None:
    """REFUSED spans that the trace destination rejects for good: dropped, counted as failed."""
    tempo.mode = "invalid"
    response = httpx.post(
        f"{gateway.http_url}/v1/traces",
        content=traces([{"k": i} for i in range(REFUSED)], service=SERVICE),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 30
    key = ("otelml_exporter_send_failed_spans_total", "traces")
    while not any(
        name == key[0] and dict(labels).get("exporter") == key[1]
        for name, labels in gateway.samples()
    ):
        assert time.monotonic() < deadline, "the refused spans were not counted"
        time.sleep(0.2)
    tempo.mode = "ok"


def _overflow(gateway: RunningGateway) -> None:
    """A second replica with a tiny series budget: a wide span overflows it."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x03" * 16, b"\x04" * 8, "predict"
    for key, value in [(semconv.MODEL_NAME, "wide")] + [(f"{F}f{i}", float(i)) for i in range(40)]:
        attribute = span.attributes.add()
        attribute.key = key
        if isinstance(value, str):
            attribute.value.string_value = value
        else:
            attribute.value.double_value = value
    response = httpx.post(
        f"{gateway.http_url}/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200


def _label_values(prometheus: Prometheus, selector: str, label: str) -> list[str]:
    response = httpx.get(
        f"{prometheus.url}/api/v1/label/{label}/values",
        params={"match[]": selector, "start": time.time() - 600, "end": time.time()},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json()["data"])


def _series_labels(prometheus: Prometheus, selector: str) -> set[str]:
    response = httpx.get(
        f"{prometheus.url}/api/v1/series",
        params={"match[]": selector, "start": time.time() - 120, "end": time.time()},
        timeout=10,
    )
    response.raise_for_status()
    return {name for series in response.json()["data"] for name in series}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboards")
    rng = np.random.default_rng(12)
    reference = _reference(tmp, rng)
    tempo, loki = GrpcSink(), HttpSink()
    loki.mode = "invalid"  # every log batch is refused for good: send_failed is counted
    model = {
        "name": "churn",
        "version": "3",
        "reference": str(reference),
        "window": "10m",
        "step": "1s",
        "segments": ["country"],
        "drift": {"min_samples": 20},
        "ground_truth": {"ttl": "1h"},
    }
    main_config = loopback_config(
        models=[model],
        auth={"bearer_token": TOKEN},
        exporters={
            "traces": {"endpoint": tempo.endpoint, "protocol": "grpc"},
            "logs": {"endpoint": loki.url, "retry": {"max_elapsed": "1s"}},
        },
        queue={"directory": str(tmp / "queue")},
    )
    budget_config = loopback_config(limits={"max_series": 60})
    try:
        with running_gateway(main_config) as main, running_gateway(budget_config) as budget:
            targets = [f"127.0.0.1:{g.ports.admin}" for g in (main, budget)]
            with running_prometheus(tmp, targets, rule_files=[queries.RULES]) as prometheus:
                # Scraped before and during the traffic, so rates are rates, not zeros.
                prometheus.wait_for("up == 1", lambda r: len(r) == 2, 60)
                _refused_by_tempo(main, tempo)
                trace_ids, scores = _send_traffic(main, rng)
                _overflow(budget)
                prometheus.wait_for(
                    'otelml_drift_detected{feature="age"} == 1', lambda r: len(r) == 1, 60
                )
                prometheus.wait_for("otelml:feature_psi", lambda r: len(r) >= 3, 60)
                prometheus.wait_for(
                    "otelml_exporter_send_failed_log_records_total", lambda r: len(r) >= 1, 60
                )
                prometheus.wait_for("otelml_performance", lambda r: len(r) >= 1, 60)
                time.sleep(3)  # a few more scrapes, so every rate() has two samples
                variables = {
                    queries.load_dashboard(path)["uid"]: queries.resolve_variables(
                        queries.load_dashboard(path),
                        lambda s, label: _label_values(prometheus, s, label),
                    )
                    for path in queries.dashboard_files()
                }
                yield Stack(prometheus, main, budget, trace_ids, scores, variables)
    finally:
        tempo.stop()
        loki.stop()


def _check_query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    selectors = queries.selectors(expr)
    # Only a constant (a threshold line) may read no metric of this project.
    assert selectors or re.fullmatch(r"vector\([0-9.]+\)", expr), f"no metric in {expr}"
    universe: set[str] = set()
    for selector in selectors:
        found = stack.prometheus.query(selector)
        assert found, f"{selector} selects no series"
        labels = _series_labels(stack.prometheus, selector)
        unknown = queries.matcher_labels(selector) - labels
        assert not unknown, f"{selector}: no series has label(s) {unknown}"
        universe |= labels
    ungrouped = queries.grouping_labels(expr) - universe
    assert not ungrouped, f"grouping by label(s) {ungrouped} that no selected series has"
    result = stack.prometheus.query(expr)
    assert result, f"no data for {expr}"
    return result


@pytest.mark.parametrize("query", queries.dashboard_queries(), ids=lambda q: q.where)
def test_every_dashboard_query_returns_data(stack: Stack, query: queries.Query) -> None:
    variables = stack.variables[query.where.split("/")[0]]
    if query.repeat is None:
        _check_query(stack, queries.substitute(query.expr, variables))
        return
    # A repeated panel: one copy per value, each with that one value.
    for value in variables[query.repeat]:
        _check_query(stack, queries.substitute(query.expr, {**variables, query.repeat: [value]}))


@pytest.mark.parametrize("query", queries.rule_queries(), ids=lambda q: q.where)
def test_every_rule_returns_data_and_every_alert_fires_on_this_traffic(
    stack: Stack, query: queries.Query
) -> None:
    _check_query(stack, query.expr)


def test_variables_resolve_to_what_was_sent(stack: Stack) -> None:
    drift = stack.variables["otelml-model-drift"]
    assert drift["model"] == ["churn"]
    assert drift["version"] == ["3"]
    assert drift["feature"] == ["age", "country", "income", "plan"]
    assert drift["numeric_feature"] == ["age", "income"]
    assert drift["categorical_feature"] == ["country", "plan"]
    assert drift["segment"] == ["country"]
    assert drift["segment_value"] == ["DE", "FR", "US"]
    assert stack.variables["otelml-model-service"] == {
        "service": [SERVICE],
        "span_name": ["predict"],
    }
    assert len(stack.variables["otelml-gateway"]["instance"]) == 2


def test_conservation_panels_show_nothing_lost(stack: Stack) -> None:
    dashboard = queries.load_dashboard(queries.DASHBOARDS / "otelml-gateway.json")
    values = stack.variables["otelml-gateway"]
    conservation = [
        p["targets"][0]["expr"]
        for p in queries.panels(dashboard)
        if p["title"].startswith("Conservation")
    ]
    assert len(conservation) == 2
    for expr in conservation:
        (sample,) = stack.prometheus.query(queries.substitute(expr, values))
        assert float(sample["value"][1]) == 0.0, expr
    accepted = stack.prometheus.query("sum(otelml_receiver_accepted_spans_total)")
    assert float(accepted[0]["value"][1]) == ROWS + REFUSED + 1  # + the overflowing replica's
    failed = stack.prometheus.query("sum(otelml_exporter_send_failed_spans_total)")
    assert float(failed[0]["value"][1]) == REFUSED


def test_drift_events_and_latency_carry_exemplars_of_sent_traces(stack: Stack) -> None:
    now = time.time()
    for selector in (
        'otelml_drift_events_total{feature="age"}',
        'traces_spanmetrics_latency_bucket{service="churn-svc"}',
    ):
        found = stack.prometheus.query_exemplars(selector, now - 600, now)
        trace_ids = {e["labels"]["trace_id"] for series in found for e in series["exemplars"]}
        assert trace_ids, selector
        assert trace_ids <= stack.trace_ids, selector


def test_the_age_drift_is_attributed_to_the_route_it_comes_from(stack: Stack) -> None:
    """Age moved only on the second route, which carries every other request."""
    explained = stack.prometheus.query('otelml_drift_attribution{feature="age"}')
    top = max(explained, key=lambda sample: float(sample["value"][1]))
    assert (top["metric"]["key"], top["metric"]["value"]) == ("http.route", ROUTES[1])
    assert float(top["value"][1]) > 0.9
    (share,) = stack.prometheus.query(
        f'otelml_drift_attribution_traffic_share{{feature="age", value="{ROUTES[1]}"}}'
    )
    assert float(share["value"][1]) == 0.5


def test_realized_accuracy_falls_below_the_estimate_under_concept_drift(stack: Stack) -> None:
    """The score's truth contradicts its calibration: realized accuracy is what the posted
    labels give, and the label-free estimate stays above it."""
    scores = stack.scores[:400]
    expected = float(np.mean((scores >= 0.5) == (scores < 0.3)))
    (realized,) = stack.prometheus.query('otelml_performance{output="score", metric="accuracy"}')
    assert float(realized["value"][1]) == pytest.approx(expected)
    (gap,) = stack.prometheus.query('otelml:performance_estimate_gap{metric="accuracy"}')
    (estimate,) = stack.prometheus.query(
        'otelml_performance_estimated{output="score", metric="accuracy"}'
    )
    assert float(gap["value"][1]) == pytest.approx(float(estimate["value"][1]) - expected)
    assert float(gap["value"][1]) > 0.3


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(otelml_feature_mising_total[1m]))",  # a metric the gateway does not expose
        'max(otelml_drift_score{featur="age"})',  # a label no series has
        "max by (segment) (otelml_drift_score)",  # grouping by a label of another family
    ],
)
def test_a_name_the_gateway_does_not_expose_fails_the_check(stack: Stack, expr: str) -> None:
    with pytest.raises(AssertionError):
        _check_query(stack, expr)


@pytest.mark.parametrize(
    "name",
    [q["name"] for q in datasources()["tempo"]["jsonData"]["tracesToMetrics"]["queries"]],
)
def test_the_traces_to_metrics_links_return_data_for_a_span_of_the_service(
    stack: Stack, name: str
) -> None:
    """Grafana fills $__tags from the span's tags mapped as the datasource says
    (service.name → service)."""
    links = datasources()["tempo"]["jsonData"]["tracesToMetrics"]
    (query,) = [q["query"] for q in links["queries"] if q["name"] == name]
    tags = ", ".join(f'{tag["value"]}="{SERVICE}"' for tag in links["tags"])
    _check_query(stack, query.replace("$__tags", tags))
