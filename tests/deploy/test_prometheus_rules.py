"""The shipped Prometheus rules: valid for promtool, and right against two real replicas."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from otelml import profile, semconv
from otelml.gateway.drift import scores
from tests.conftest import loopback_config, running_gateway
from tests.gateway.otlp_builders import traces
from tests.prometheus_server import prometheus_binary, running_prometheus

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "otelml-rules.yaml"
CATEGORIES = ["a", "b", "c", "d"]


def test_promtool_accepts_the_rules() -> None:
    prometheus_binary()  # fails in CI / skips locally when Prometheus is not installed
    promtool = shutil.which("promtool")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_cluster_wide_psi_and_ks_from_two_replicas_equal_one_place(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    training = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 3000),
            "c": rng.choice(CATEGORIES, 3000, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    reference = profile.build(training, model="r", version="1")
    path = tmp_path / "reference.json"
    profile.save(reference, path)
    model = {
        "name": "r",
        "version": "1",
        "reference": str(path),
        "window": "10m",
        "step": "1s",
        "drift": {"min_samples": 10},
    }
    xs = rng.normal(0.4, 1.2, 4000)
    cs = rng.choice(CATEGORIES, 4000, p=[0.25, 0.25, 0.25, 0.25])
    with (
        running_gateway(loopback_config(models=[model])) as first,
        running_gateway(loopback_config(models=[model])) as second,
    ):
        for i, gateway in enumerate((first, second, first, second)):
            chunk = slice(i * 1000, (i + 1) * 1000)
            spans = [
                {
                    semconv.MODEL_NAME: "r",
                    semconv.MODEL_VERSION: "1",
                    semconv.FEATURE_PREFIX + "x": xs[chunk][j : j + 50].tolist(),
                    semconv.FEATURE_PREFIX + "c": cs[chunk][j : j + 50].tolist(),
                }
                for j in range(0, 1000, 50)
            ]
            response = httpx.post(
                f"{gateway.http_url}/v1/traces",
                content=traces(spans, first_trace=1 + i * 1000),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert response.status_code == 200
        time.sleep(2.5)  # both engines step at least once after the last request
        targets = [f"127.0.0.1:{g.ports.admin}" for g in (first, second)]
        with running_prometheus(tmp_path, targets, rule_files=[RULES]) as prometheus:
            edges = np.asarray(reference.features["x"].edges)  # type: ignore[union-attr]
            live = np.bincount(np.searchsorted(edges, xs, side="left"), minlength=len(edges) + 1)
            ref_x = reference.features["x"].counts
            expected_psi = scores.psi(ref_x, live)[0]
            expected_ks = scores.ks(ref_x, live)[0][0]
            cat = reference.features["c"]
            names = [*cat.categories, semconv.OTHER_CATEGORY]  # type: ignore[union-attr]
            live_c = np.array([int(np.count_nonzero(cs == n)) for n in names])
            expected_c = scores.psi(cat.counts, live_c)[0]

            # Both replicas scraped and summed: the cluster-wide window holds all 4000 rows.
            prometheus.wait_for(
                'otelml:drift_window_bucket:sum{feature="x",le="+Inf"}',
                lambda r: len(r) == 1 and float(r[0]["value"][1]) == 4000.0,
            )

            def settled(expr: str, expected: float) -> float:
                """The recorded value once the rule has evaluated on the summed window."""
                result = prometheus.wait_for(
                    expr,
                    lambda r: (
                        len(r) == 1 and float(r[0]["value"][1]) == pytest.approx(expected, rel=1e-9)
                    ),
                    timeout=20,
                )
                return float(result[0]["value"][1])

            assert settled('otelml:feature_psi{feature="x"}', expected_psi) == pytest.approx(
                expected_psi, rel=1e-9
            )
            assert settled('otelml:feature_ks{feature="x"}', expected_ks) == pytest.approx(
                expected_ks, rel=1e-9
            )
            assert settled('otelml:feature_psi{feature="c"}', expected_c) == pytest.approx(
                expected_c, rel=1e-9
            )
            # Each replica saw half: its own window holds 2000 observations.
            halves = prometheus.query('otelml_drift_window_observations{feature="x"}')
            assert sorted(float(h["value"][1]) for h in halves) == [2000.0, 2000.0]
