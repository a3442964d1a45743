"""The hand-written exposition: strict OpenMetrics, histogram rules, escaping, and speed parity."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from otelml.gateway.decode.kinds import KIND_DOUBLE
from otelml.gateway.exporters.prometheus import render, wants_openmetrics
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.state.distributions import NumericDistribution
from otelml.gateway.state.families import Exemplar, Family, Histogram, Sample
from otelml.gateway.state.keys import ModelKey, SeriesKey
from otelml.gateway.state.observations import Observations, Origin
from tests.conftest import RunningGateway
from tests.gateway.otlp_builders import traces


def _observe(dist: NumericDistribution, values: list[float]) -> None:
    n = len(values)
    dist.observe(
        Observations(
            kind=np.full(n, KIND_DOUBLE, np.int8),
            number=np.asarray(values),
            integer=np.zeros(n, np.int64),
            record=np.arange(n, dtype=np.int32),
            origin=Origin(
                np.full((n, 16), 0xAB, np.uint8), np.full((n, 8), 0xCD, np.uint8), np.full(n, 1.7e9)
            ),
            text=np.full(n, -1, np.int32),
            strings=[],
        )
    )


def _state_with(edges: tuple[float, ...], values: list[float], model: str = "m") -> GatewayState:
    state = GatewayState.create()
    dist = state.store.distribution(ModelKey(model, "1"), SeriesKey("feature", "x"), "numeric")
    assert isinstance(dist, NumericDistribution)
    dist.edges = np.asarray(edges)
    dist.counts = np.zeros(len(edges) + 1, np.int64)
    dist.exemplars = type(dist.exemplars)(len(edges) + 1)
    _observe(dist, values)
    return state


def _family(text: str, name: str) -> Any:
    return next(f for f in text_string_to_metric_families(text) if f.name == name)


def test_negative_buckets_drop_sum_and_count() -> None:
    text = render(_state_with((-1.0, 1.0), [-3.0, 0.0, 2.0]).families(), openmetrics=True)
    family = _family(text, "otelml_feature_value")
    names = {s.name for s in family.samples}
    assert names == {"otelml_feature_value_bucket"}
    buckets = [(s.labels["le"], s.value) for s in family.samples]
    assert buckets == [("-1.0", 1), ("1.0", 2), ("+Inf", 3)]


def test_nonnegative_buckets_keep_sum_and_count() -> None:
    text = render(_state_with((0.0, 1.0), [0.5, 0.25, 4.0]).families(), openmetrics=True)
    family = _family(text, "otelml_feature_value")
    values = {s.name: s.value for s in family.samples if not s.name.endswith("_bucket")}
    assert values == {"otelml_feature_value_sum": 4.75, "otelml_feature_value_count": 3}


def test_exemplars_render_hex_ids_value_and_time() -> None:
    text = render(_state_with((0.0, 1.0), [0.5]).families(), openmetrics=True)
    bucket = next(
        s for s in _family(text, "otelml_feature_value").samples if s.labels.get("le") == "1.0"
    )
    assert bucket.exemplar.labels == {"trace_id": "ab" * 16, "span_id": "cd" * 8}
    assert bucket.exemplar.value == 0.5
    assert float(bucket.exemplar.timestamp) == 1.7e9


def test_label_values_are_escaped() -> None:
    model = 'we"ird\\name\nline'
    text = render(_state_with((0.0,), [1.0], model=model).families(), openmetrics=True)
    sample = _family(text, "otelml_feature_value").samples[0]
    assert sample.labels["model"] == model


def test_content_negotiation() -> None:
    assert wants_openmetrics("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert not wants_openmetrics("text/plain;version=0.0.4")
    assert not wants_openmetrics(None)


def test_families_are_formatted_by_the_rules_of_each_format() -> None:
    exemplar = Exemplar("ab" * 16, "cd" * 8, 0.5, 1700000000.25)
    families = [
        Family(
            "c_total",
            "counter",
            "A counter.",
            [
                Sample((("a", 'quo"te\\new\nline'),), 3, exemplar=exemplar),
                Sample((), 1, (("reason", "x"),)),
                Sample((), 2),
            ],
        ),
        Family("g", "gauge", "A gauge.", [Sample((("k", "v"),), 0.1), Sample((), float("inf"))]),
        Family(
            "h",
            "gaugehistogram",
            "A gauge histogram.",
            histograms=[Histogram((), (0.5, 1.0), np.array([1, 0, 2]))],
        ),
    ]
    assert render(families, openmetrics=False) == (
        "# HELP c_total A counter.\n# TYPE c_total counter\n"
        'c_total{a="quo\\"te\\\\new\\nline"} 3\n'
        'c_total{reason="x"} 1\n'
        "c_total{} 2\n"
        "# HELP g A gauge.\n# TYPE g gauge\n"
        'g{k="v"} 0.1\n'
        "g{} +Inf\n"
        "# HELP h A gauge histogram.\n# TYPE h histogram\n"
        'h_bucket{le="0.5"} 1\nh_bucket{le="1.0"} 1\nh_bucket{le="+Inf"} 3\n'
    )
    openmetrics = render(families, openmetrics=True)
    assert openmetrics.startswith("# HELP c A counter.\n# TYPE c counter\n")
    assert (
        f'c_total{{a="quo\\"te\\\\new\\nline"}} 3 # {{trace_id="{"ab" * 16}",'
        f'span_id="{"cd" * 8}"}} 0.5 1700000000.250\n'
    ) in openmetrics
    assert "# TYPE h gaugehistogram\n" in openmetrics
    assert openmetrics.endswith("# EOF\n")
    parsed = {f.name: f for f in text_string_to_metric_families(openmetrics)}
    assert parsed["c"].samples[0].labels == {"a": 'quo"te\\new\nline'}


def test_other_class_is_exposed_only_once_something_fell_into_it(gateway: RunningGateway) -> None:
    """No `__other__` series at 0: the learned classes alone, until one is not among them."""

    def send(classes: list[str], first_trace: int) -> None:
        spans = [
            {"ml.model.name": "m", "ml.model.version": "1", "ml.prediction": c} for c in classes
        ]
        response = httpx.post(
            f"{gateway.http_url}/v1/traces",
            content=traces(spans, first_trace=first_trace),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200

    def class_lines() -> list[str]:
        lines = gateway.scrape(openmetrics=False).splitlines()
        return [line for line in lines if line.startswith("otelml_prediction_class_total{")]

    labels = 'model="m",model_version="1",output="prediction"'
    send(["yes", "no", "yes"], first_trace=1)
    assert class_lines() == [
        f'otelml_prediction_class_total{{{labels},class="yes"}} 2',
        f'otelml_prediction_class_total{{{labels},class="no"}} 1',
    ]
    send([f"c{i}" for i in range(25)], first_trace=10)  # 20 learned at most: 7 fall outside
    lines = class_lines()
    assert len(lines) == 21
    assert lines[-1] == f'otelml_prediction_class_total{{{labels},class="__other__"}} 7'
