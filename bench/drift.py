"""Drift speed: `otelml drift` vs Evidently's DataDriftPreset on the same files, and the
gateway's per-step evaluation for 100 models × 20 features.

Files: 20 features (15 numeric, 5 categorical), 100k reference rows, 100k current rows, 4 of
the features shifted. Evidently runs in its own environment (it needs pandas < 3):
`make bench` creates `.bench-venv`; without it the comparison is skipped and says so.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.timing import median_time
from otelml import profile
from otelml.config import parse
from otelml.gateway.decode.kinds import KIND_DOUBLE, KIND_STRING
from otelml.gateway.drift.batch import assess
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.state.keys import ModelKey, ModelProfile, SeriesKey
from otelml.gateway.state.observations import Observations, Origin

ROOT = Path(__file__).resolve().parents[1]
EVIDENTLY_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
SHIFTED = {"num_03", "num_07", "num_11", "cat_2"}
CATEGORIES = [f"v{i}" for i in range(8)]


def make_frame(rng: np.random.Generator, rows: int, shifted: bool) -> pd.DataFrame:
    data: dict[str, object] = {}
    for i in range(15):
        name = f"num_{i:02d}"
        shift = 0.5 * (1 + i % 3) if shifted and name in SHIFTED else 0.0
        data[name] = rng.normal(i + shift, 1 + i % 4, rows)
    base = np.linspace(2, 1, len(CATEGORIES))
    for i in range(5):
        p = base[::-1] if shifted and f"cat_{i}" in SHIFTED else base
        data[f"cat_{i}"] = rng.choice(CATEGORIES, rows, p=p / p.sum())
    return pd.DataFrame(data)


def file_comparison(directory: Path) -> dict[str, object]:
    rng = np.random.default_rng(0)
    reference_frame = make_frame(rng, 100_000, False)
    current_frame = make_frame(rng, 100_000, True)
    reference_path, current_path = directory / "reference.parquet", directory / "current.parquet"
    reference_frame.to_parquet(reference_path)
    current_frame.to_parquet(current_path)
    build_s = median_time(lambda: profile.build(reference_frame), runs=3)
    reference = profile.build(reference_frame)
    assess_s = median_time(lambda: assess(reference, current_frame), runs=5)
    ours = {r.column for r in assess(reference, current_frame) if r.drift}
    out: dict[str, object] = {"otelml_s": assess_s, "profile_build_s": build_s, "otelml": ours}
    if EVIDENTLY_PYTHON.exists():
        result = subprocess.run(
            [
                str(EVIDENTLY_PYTHON),
                str(ROOT / "bench" / "evidently_runner.py"),
                str(reference_path),
                str(current_path),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        evidently = json.loads(result.stdout.strip().splitlines()[-1])
        out["evidently_s"] = evidently["seconds"]
        out["evidently"] = set(evidently["drifted"])
    return out


def engine_step(models: int = 100, features: int = 20, steps: int = 21) -> float:
    """Median seconds of one evaluation step with every series live."""
    rng = np.random.default_rng(1)
    reference_frame = make_frame(rng, 5_000, False).iloc[:, :features]
    reference = profile.build(reference_frame)
    configs = parse(
        {
            "models": [
                {"name": f"m{i}", "version": "1", "step": "1s", "window": "5s"}
                for i in range(models)
            ]
        }
    ).models
    profiles = [ModelProfile(f"m{i}", "1", reference) for i in range(models)]
    state = GatewayState.create(max_series=10_000_000, models=profiles)
    engine = DriftEngine(configs, profiles)
    n = 512
    origin = Origin(np.ones((n, 16), np.uint8), np.ones((n, 8), np.uint8), np.ones(n))
    strings = CATEGORIES
    for m in range(models):
        for name, feature in reference.features.items():
            dist = state.store.distribution(
                ModelKey(f"m{m}", "1"), SeriesKey("feature", name), "numeric"
            )
            assert dist is not None
            numeric = isinstance(feature, profile.NumericProfile)
            dist.observe(
                Observations(
                    kind=np.full(n, KIND_DOUBLE if numeric else KIND_STRING, np.int8),
                    number=rng.normal(0, 3, n),
                    integer=np.zeros(n, np.int64),
                    text=rng.integers(0, len(strings), n).astype(np.int32),
                    strings=strings,
                    record=np.arange(n, dtype=np.int32),
                    origin=origin,
                    uniform_kind=KIND_DOUBLE if numeric else KIND_STRING,
                    all_finite=True,
                )
            )
    engine.evaluate(state.store, 0.0)  # discovery happens once
    times = []
    for step in range(1, steps):
        start = time.perf_counter()
        engine.evaluate(state.store, float(step))
        times.append(time.perf_counter() - start)
    assert len(engine.verdicts) == models * features
    return statistics.median(times)


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        results = file_comparison(Path(directory))
    results["engine_step_s"] = engine_step()
    return results


if __name__ == "__main__":
    for key, value in run().items():
        print(key, value)
