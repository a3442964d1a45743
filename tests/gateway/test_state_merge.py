"""Merging the states of workers that each saw part of the traffic = one state that saw it all."""

from __future__ import annotations

import numpy as np

from otelml import semconv
from otelml.gateway.exporters.prometheus import render
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.pipeline import Pipeline
from tests.gateway.otlp_builders import logs, traces

F = semconv.FEATURE_PREFIX


def _pipeline(state: GatewayState) -> Pipeline:
    return state.pipeline()


def _requests(seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(12):
        spans = [
            {
                semconv.MODEL_NAME: "m",
                semconv.MODEL_VERSION: str(1 + i % 2),
                F + "x": float(rng.normal(0, 5)),
                F + "batch": rng.normal(3, 1, 4).tolist(),
                F + "city": str(rng.choice(["a", "b", "c"])),
                semconv.PREDICTION: float(rng.uniform()),
            }
            for _ in range(int(rng.integers(1, 20)))
        ]
        out.append(("traces", traces(spans, name=f"op{i % 3}", first_trace=1 + 1000 * i)))
        out.append(("logs", logs([{semconv.MODEL_NAME: "m", F + "x": float(i)}], 500 + i)))
    return out


def test_merged_workers_expose_exactly_what_one_process_would() -> None:
    requests = _requests(5)
    whole = GatewayState.create()
    halves = [GatewayState.create(), GatewayState.create()]
    for i, (signal, payload) in enumerate(requests):
        for state in (whole, halves[i % 2]):
            pipeline = _pipeline(state)
            if signal == "traces":
                pipeline.consume_traces(payload, "grpc")
            else:
                pipeline.consume_logs(payload, "grpc")
    merged = GatewayState.create()
    for half in halves:
        merged.merge(half)
    # Text format carries every count and no exemplars: the same lines (series are created in
    # another order when the traffic is split, so compare them as sets).
    merged_lines = render(merged.families(), openmetrics=False).splitlines()
    whole_lines = render(whole.families(), openmetrics=False).splitlines()
    assert sorted(merged_lines) == sorted(whole_lines)
    assert len(merged_lines) > 300
    # Exemplars: each non-empty bucket has one, from a worker that counted a value there.
    one_process = {(m, s): d for m, s, d in whole.store.items()}
    for model, series, dist in merged.store.items():
        assert (dist.counts == one_process[(model, series)].counts).all(), (model, series)
        assert ((dist.exemplars.time_s > 0) == (dist.counts > 0)).all()


def test_merge_keeps_the_scrape_bounded_by_the_series_budget() -> None:
    first, second = GatewayState.create(), GatewayState.create()
    _pipeline(first).consume_traces(traces([{semconv.MODEL_NAME: "a", F + "x": 1.0}]), "grpc")
    _pipeline(second).consume_traces(traces([{semconv.MODEL_NAME: "b", F + "y": 2.0}] * 3), "grpc")
    merged = GatewayState.create(max_series=80)  # room for one histogram (55) + span series (20)
    merged.merge(first)
    merged.merge(second)
    assert [(m.model, s.name) for m, s, _ in merged.store.items()] == [("a", "x")]
    assert merged.budget.overflow[semconv.FEATURE_VALUE] == 3
    assert merged.budget.used <= 80
