"""Drift attribution end to end: OTLP spans with trace attributes → slices → ranked slices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from otelml import profile, semconv
from otelml.config import parse
from otelml.gateway.drift.attribution import attribute
from otelml.gateway.drift.attributor import SliceVerdict
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.exporters.prometheus import render
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.keys import ModelKey, SeriesKey
from otelml.gateway.validation import load_models
from tests.gateway.drifting_state import drifting_state
from tests.gateway.otlp_builders import traces

F = semconv.FEATURE_PREFIX
MODEL = ModelKey("m", "1")
X = SeriesKey("feature", "x")
VERSIONS = ("v1", "v2", "v3")
SHARE = (0.35, 0.30, 0.35)
ROUTES = ("/a", "/b", "/c")
TENANTS = ("t1", "t2", "t3")

#: (version, route, tenant) of a span → the mean of its x (the reference is N(0, 1)).
Shift = Callable[[str, str, str], float]


@pytest.fixture(autouse=True)
def _every_exemplar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Exemplars, "refresh_s", 0.0)


def _gateway(tmp_path: Path) -> tuple[GatewayState, DriftEngine]:
    rng = np.random.default_rng(0)
    reference = profile.build(pd.DataFrame({"x": rng.normal(0, 1, 5000)}), model="m", version="1")
    return drifting_state(
        tmp_path,
        reference,
        window=3,
        step=1,
        drift={"method": "psi", "min_samples": 500},
        attribution={"keys": ["tenant"]},
    )


def _run(tmp_path: Path, shift: Shift, steps: int = 3) -> tuple[GatewayState, dict[str, set[str]]]:
    """`steps` steps of 1200 spans; returns the state and, per slice value, its trace ids."""
    state, engine = _gateway(tmp_path)
    pipeline = state.pipeline()
    rng = np.random.default_rng(1)
    traces_of: dict[str, set[str]] = {}
    trace = 1
    for step in range(steps):
        for version, share in zip(VERSIONS, SHARE, strict=True):
            n = int(1200 * share)
            routes = rng.choice(ROUTES, n)
            tenants = rng.choice(TENANTS, n)
            spans = []
            for route, tenant in zip(routes.tolist(), tenants.tolist(), strict=True):
                x = rng.normal(shift(version, route, tenant), 1.0)
                spans.append(
                    {
                        semconv.MODEL_NAME: "m",
                        semconv.MODEL_VERSION: "1",
                        F + "x": x,
                        "http.route": route,
                        "tenant": tenant,
                    }
                )
                for value in (version, route, tenant):
                    traces_of.setdefault(value, set()).add(f"{trace + len(spans) - 1:032x}")
            payload = traces(spans, first_trace=trace, resource={"service.version": version})
            trace += len(spans)
            pipeline.consume_traces(payload, "test")
        engine.evaluate(state.store, float(step))
    return state, traces_of


def _slices(state: GatewayState, key: str) -> list[SliceVerdict]:
    assert state.drift is not None
    return [s for s in state.drift.attributor.results.get((MODEL, X), []) if s.key == key]


def test_one_shifted_version_is_ranked_first_with_most_of_the_drift(tmp_path: Path) -> None:
    state, traces_of = _run(tmp_path, lambda version, route, tenant: 1.5 * (version == "v2"))
    assert state.drift is not None and state.drift.verdicts[(MODEL, X)].detected
    ranked = _slices(state, "service.version")
    top = ranked[0]
    assert top.value == "v2"
    assert top.explained > 0.9
    assert top.traffic_share == pytest.approx(0.30, abs=0.005)
    assert all(s.explained < 0.1 for s in ranked[1:])
    # The exemplar of the top slice is a trace of that slice (and of no other version).
    assert top.exemplar is not None
    assert top.exemplar.trace_id in traces_of["v2"]
    assert top.exemplar.trace_id not in traces_of["v1"] | traces_of["v3"]
    # The routes and tenants are spread over all versions: none of them explains the drift.
    assert all(s.explained < 0.3 for s in _slices(state, "http.route"))


def test_an_even_shift_attributes_nothing_in_particular(tmp_path: Path) -> None:
    state, _ = _run(tmp_path, lambda version, route, tenant: 0.6)
    assert state.drift is not None and state.drift.verdicts[(MODEL, X)].detected
    for key in ("service.version", "http.route", "tenant"):
        ranked = _slices(state, key)
        assert len(ranked) == 3
        assert max(s.explained for s in ranked) < 0.15, key
        scores = [s.slice_score for s in ranked]
        assert max(scores) < 1.6 * min(scores), key  # every slice as far from the reference


def test_a_drift_of_one_route_and_tenant_is_found_on_both_keys(tmp_path: Path) -> None:
    state, traces_of = _run(
        tmp_path, lambda version, route, tenant: 3.0 * (route == "/b" and tenant == "t2")
    )
    assert state.drift is not None and state.drift.verdicts[(MODEL, X)].detected
    route, tenant = _slices(state, "http.route")[0], _slices(state, "tenant")[0]
    assert (route.value, tenant.value) == ("/b", "t2")
    assert route.explained > 0.85 and tenant.explained > 0.85
    assert route.traffic_share == pytest.approx(1 / 3, abs=0.03)
    assert all(s.explained < 0.2 for s in _slices(state, "service.version"))
    assert route.exemplar is not None and route.exemplar.trace_id in traces_of["/b"]


def test_families_name_the_slices_and_carry_the_exemplar_on_a_counter(tmp_path: Path) -> None:
    state, _ = _run(tmp_path, lambda version, route, tenant: 1.5 * (version == "v2"))
    families = {f.name: f for f in state.families()}
    explained = families[semconv.DRIFT_ATTRIBUTION]
    first = explained.samples[0]
    labels = dict(first.labels)
    assert labels == {
        "model": "m",
        "model_version": "1",
        "feature": "x",
        "key": "service.version",
        "value": "v2",
    }
    assert explained.kind == "gauge" and all(s.exemplar is None for s in explained.samples)
    share = families[semconv.DRIFT_ATTRIBUTION_TRAFFIC_SHARE].samples[0]
    assert share.labels == first.labels and share.value == pytest.approx(0.3, abs=0.005)
    counter = families[semconv.DRIFT_ATTRIBUTION_OBSERVATIONS + "_total"]
    assert counter.kind == "counter"
    v2 = next(s for s in counter.samples if s.labels == first.labels)
    assert v2.value == 3 * int(1200 * 0.30) and v2.exemplar is not None
    # top 3 of each key that splits the traffic (service.version, http.route, tenant); the
    # default keys this stream never sets (one __unset__ slice each) split nothing.
    assert len(explained.samples) == 3 * 3
    assert {dict(s.labels)["key"] for s in explained.samples} == {
        "service.version",
        "http.route",
        "tenant",
    }


def test_the_exposition_is_strict_openmetrics_with_the_exemplar_on_the_counter(
    tmp_path: Path,
) -> None:
    state, traces_of = _run(tmp_path, lambda version, route, tenant: 1.5 * (version == "v2"))
    text = render(state.families(), openmetrics=True)
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    counter = parsed[semconv.DRIFT_ATTRIBUTION_OBSERVATIONS]
    sample = next(s for s in counter.samples if s.labels.get("value") == "v2")
    assert sample.exemplar is not None
    assert f"{int(sample.exemplar.labels['trace_id'], 16):032x}" in traces_of["v2"]
    gauge = parsed[semconv.DRIFT_ATTRIBUTION]
    assert gauge.type == "gauge" and all(s.exemplar is None for s in gauge.samples)


def test_workers_slices_merge_by_value_name(tmp_path: Path) -> None:
    one, _ = _gateway(tmp_path)
    two, _ = _gateway(tmp_path)
    spans = [{semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1", F + "x": 0.0}]
    one.pipeline().consume_traces(traces(spans, resource={"service.version": "a"}), "t")
    one.pipeline().consume_traces(traces(spans * 2, resource={"service.version": "b"}), "t")
    two.pipeline().consume_traces(traces(spans * 3, resource={"service.version": "b"}), "t")
    one.merge(two)
    values = one.store.slices.model_values(MODEL)
    counts = one.store.slices.get(MODEL, X)
    assert values is not None and counts is not None
    assert values.values[0] == ["a", "b"]
    assert counts.counts[0, :2].sum(axis=1).tolist() == [1, 5]
    assert int(counts.counts[1, values.capacity + 1].sum()) == 6  # service.instance.id unset


def test_attribute_is_the_relative_drop_of_psi() -> None:
    reference = np.array([50.0, 50.0])
    slices = np.array([[30.0, 0.0], [35.0, 35.0]])  # slice 0: all in bin 0; slice 1: like ref
    result = attribute(reference, slices)
    from otelml.gateway.drift.scores import psi

    base = psi(reference, slices.sum(0))[0]
    assert result.explained[0] == pytest.approx((base - psi(reference, slices[1])[0]) / base)
    assert result.explained[1] == pytest.approx(
        max(0.0, (base - psi(reference, slices[0])[0]) / base)
    )
    assert result.traffic_share.tolist() == pytest.approx([30 / 100, 70 / 100])
    assert result.slice_score[1] == pytest.approx(0.0)


def test_slices_past_the_series_budget_are_cut_and_counted(tmp_path: Path) -> None:
    state, engine = _gateway(tmp_path)
    pipeline = state.pipeline()
    rng = np.random.default_rng(2)
    for step in range(2):
        spans = [
            {
                semconv.MODEL_NAME: "m",
                semconv.MODEL_VERSION: "1",
                F + "x": float(rng.normal(2.0 * (i % 3 == 0), 1.0)),
                "http.route": ROUTES[i % 3],
                "tenant": TENANTS[i % 3],
            }
            for i in range(900)
        ]
        pipeline.consume_traces(traces(spans, first_trace=1 + 900 * step), "test")
        if step == 0:  # the distributions have their series: room for 4 slices of the 6
            state.budget.max_series = state.budget.used + 4 * 4 + 3
        engine.evaluate(state.store, float(step))
    shown = engine.attributor.results[(MODEL, X)]
    assert len(shown) == 4
    assert [s.key for s in shown] == ["http.route"] * 3 + ["tenant"]
    assert (shown[0].value, shown[3].value) == ("/a", "t1")
    # The two tenant slices cut: their window's observations, 300 each at the first step,
    # 600 each at the second.
    assert state.budget.overflow[semconv.DRIFT_ATTRIBUTION] == 2 * 300 + 2 * 600


def test_a_categorical_feature_is_attributed_like_a_numeric_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"c": rng.choice(list("abcd"), 5000)})
    profile.save(profile.build(frame, model="m", version="1"), tmp_path / "r.json")
    config = parse(
        {
            "models": [
                {
                    "name": "m",
                    "version": "1",
                    "reference": str(tmp_path / "r.json"),
                    "window": 3,
                    "step": 1,
                    "drift": {"method": "psi", "min_samples": 100},
                }
            ]
        }
    )
    models = load_models(config)
    state = GatewayState.create(models=models)
    engine = state.drift = DriftEngine(config.models, models)
    pipeline = state.pipeline()
    for first, (version, p) in enumerate((("v1", [0.25] * 4), ("v2", [0.7, 0.1, 0.1, 0.1]))):
        values = rng.choice(list("abcd"), 600, p=p).tolist()
        spans = [{semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1", F + "c": c} for c in values]
        payload = traces(spans, first_trace=1 + 600 * first, resource={"service.version": version})
        pipeline.consume_traces(payload, "test")
    engine.evaluate(state.store, 0.0)
    top, other = engine.attributor.results[(MODEL, SeriesKey("feature", "c"))]
    assert (top.value, other.value) == ("v2", "v1")
    assert top.explained > 0.95 and other.explained == 0.0
    assert top.exemplar is not None and int(top.exemplar.trace_id, 16) > 600


def test_the_ui_api_lists_the_slices_that_explain_the_drift(tmp_path: Path) -> None:
    """/api/v1/series answers the attributor's ranking as it is (one reader, no copy)."""
    from otelml.gateway.ui import query

    state, traces_of = _run(tmp_path, lambda version, route, tenant: 1.5 * (version == "v2"))
    answer = query.series(state, "m", "1", "feature", "x", None)
    assert state.drift is not None
    ranked = state.drift.attributor.results[(MODEL, X)]
    assert [(a["key"], a["value"]) for a in answer["attribution"]] == [
        (s.key, s.value) for s in ranked
    ]
    top = next(a for a in answer["attribution"] if a["key"] == "service.version")
    assert top["value"] == "v2" and top["explained"] == ranked[0].explained > 0.9
    assert top["traffic_share"] == pytest.approx(0.30, abs=0.005)
    assert top["trace_id"] in traces_of["v2"]
    assert answer["estimated"] == {}  # a feature: nothing to estimate
