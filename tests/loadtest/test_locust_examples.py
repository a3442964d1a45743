"""Headless locust against the real example services and a real gateway (its own process):
the gateway counts exactly the rows locust sent, flags drift for the moved features only and
only once the drift phase started, and fills the performance metrics from the ground truth
posted later. With the gateway killed for a part of the run, the services keep answering and
the verdict reports the loss (exit 3 under --otelml-strict) instead of passing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.instrument.test_bentoml import _ready, _serve, _stop, bento_environment
from tests.loadtest.harness import (
    DRIFT_AT,
    FEATURES,
    MOVED,
    ExampleGateway,
    LocustRun,
    run_locust,
    serve_fastapi,
    wait_until,
)
from tests.prometheus_server import free_port

pytestmark = pytest.mark.slow
SERVICES = ("fastapi_service", "bentoml_service")


@contextmanager
def serving(example: str, gateway: ExampleGateway, directory: Path) -> Iterator[str]:
    """The example service, sending to `gateway`: its base URL."""
    if example == "fastapi_service":
        server, base = serve_fastapi(gateway, directory / "uvicorn.log")
        try:
            yield base
        finally:
            server.terminate()
            server.communicate(timeout=30)
        return
    venv = bento_environment("sdk-current")
    port = free_port()
    bento = _serve(venv, directory, port, gateway.otlp_grpc, directory / "bentoml.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(base), 180, bento)
        yield base
    finally:
        _stop(bento)


def _load_test(
    example: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    during: Callable[[ExampleGateway], None] | None = None,
) -> tuple[LocustRun, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "500")  # bentoml serve's span batches
    gateway = ExampleGateway.start(example, tmp_path, monkeypatch)
    try:
        with serving(example, gateway, tmp_path) as base:
            run = run_locust(
                example,
                base,
                gateway,
                tmp_path,
                None if during is None else lambda: during(gateway),
            )
        return run, gateway.samples()
    finally:
        gateway.stop()


def _rows_counted(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, float]:
    """feature → rows in its buckets or categories plus missing (no invalid type was sent)."""
    rows = dict.fromkeys(FEATURES, 0.0)
    for (name, labels), value in samples.items():
        label = dict(labels)
        if (name == "otelml_feature_value_bucket" and label["le"] == "+Inf") or name in (
            "otelml_feature_category_total",
            "otelml_feature_missing_total",
        ):
            rows[label["feature"]] += value
    return rows


@pytest.mark.parametrize("example", SERVICES)
def test_locust_run_monitoring_keeps_up(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, samples = _load_test(example, tmp_path, monkeypatch)
    verdict = run.verdict
    assert run.returncode == 0, run.output
    assert verdict["passed"], verdict
    assert {name: failures for name, (_, failures) in run.stats.items()} == {
        "/predict": 0,
        "/predict_batch": 0,
    }
    sent = verdict["sent"]["rows"]
    assert sent == run.rows_by_locust > 1000
    assert _rows_counted(samples) == dict.fromkeys(FEATURES, float(sent))  # exactly
    assert verdict["counted"] == dict.fromkeys(FEATURES, sent)
    assert "otelml verdict for model diabetes: PASS" in run.output

    # Flagged during the drift phase for the moved features, never before it, never others.
    assert verdict["flagged_before"] == []
    assert verdict["flagged_during"] == sorted(MOVED)
    flagged_at = [at for at, _, flagged, _ in verdict["timeline"] if flagged]
    assert flagged_at and min(flagged_at) >= DRIFT_AT
    timeline = [(phase, set(flagged)) for _, phase, flagged, _ in verdict["timeline"]]
    assert {phase for phase, _ in timeline} == {"warm-up", "normal", "drift"}
    assert all(flagged <= MOVED for _, flagged in timeline)
    events = {
        dict(labels)["feature"]: value
        for (name, labels), value in samples.items()
        if name == "otelml_drift_events_total"
    }
    assert {feature for feature, value in events.items() if value > 0} == MOVED

    # Performance from the ground truth posted later: every post matched a prediction.
    posted = verdict["sent"]["ground_truth_posted"]
    assert posted > 300 and verdict["sent"]["ground_truth_failed"] == 0
    assert (
        samples[
            (
                "otelml_ground_truth_total",
                frozenset(
                    {("model", "diabetes"), ("model_version", "1"), ("output", "progression")}
                ),
            )
        ]
        == posted
    )
    metrics = {
        dict(labels)["metric"]: value
        for (name, labels), value in samples.items()
        if name == "otelml_performance"
    }
    assert {"mae", "rmse"} <= set(metrics) and 0 < metrics["mae"] <= metrics["rmse"]
    # The truth posted in the drift phase is the unshifted patients': the error grows.
    mae = {
        phase: performance["progression mae"]
        for _, phase, _, performance in verdict["timeline"]
        if performance and "progression mae" in performance
    }
    assert mae["normal"] < mae["drift"], verdict["timeline"]


@pytest.mark.parametrize("example", SERVICES)
def test_gateway_down_for_part_of_the_run_services_answer_and_the_verdict_fails(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outage: list[float] = []

    def stop_for_a_while(gateway: ExampleGateway) -> None:
        time.sleep(12)
        gateway.process.kill()
        outage.append(time.time())
        time.sleep(8)
        outage.append(time.time())
        gateway.process.start()

    run, samples = _load_test(example, tmp_path, monkeypatch, stop_for_a_while)
    verdict = run.verdict
    assert run.returncode == 3, run.output  # the verdict failed; locust saw no failure
    assert all(failures == 0 for _, failures in run.stats.values())
    answered_in_outage = [n for at, n in run.history if outage[0] + 1 <= at <= outage[1]]
    assert answered_in_outage[-1] > answered_in_outage[0]  # the services kept answering

    sent = verdict["sent"]["rows"]
    counted = _rows_counted(samples)
    assert sent == run.rows_by_locust
    assert verdict["counted"] == {f: int(n) for f, n in counted.items()}
    assert max(counted.values()) < sent  # what the restarted gateway saw, not all
    assert not verdict["passed"]
    lost = sent - min(verdict["counted"].values())
    assert f"rows of the {sent:,} sent ({lost:,} lost)" in run.output
    assert verdict["silent_polls"] and verdict["sent"]["ground_truth_failed"] > 0
    assert "the gateway did not answer" in run.output
    assert "otelml verdict for model diabetes: FAIL" in run.output
