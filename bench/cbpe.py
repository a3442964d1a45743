"""Label-free performance: otelml's confidence-based estimate vs NannyML's CBPE, side by side.

A calibrated binary classifier (P(y=1 | x) = sigmoid(2x), the score is that probability):
20k reference rows, then 4 windows of 5k rows whose input mean moves (covariate shift). Each
tool calibrates on the reference and estimates accuracy, precision, recall, F1 and ROC AUC
per window without labels; the realized values from the labels are beside them. NannyML runs
in its own environment (`make bench-nannyml` creates `.bench-nannyml-venv`); without it that
column is skipped and says so.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from otelml import profile
from otelml.gateway.drift.batch_performance import assess_performance
from otelml.gateway.performance.estimation import METRICS

ROOT = Path(__file__).resolve().parents[1]
NANNYML_PYTHON = ROOT / ".bench-nannyml-venv" / "bin" / "python"
CHUNK = 5000
MEANS = (0.0, 0.5, 1.0, -0.7)


def make_frame(rng: np.random.Generator, rows: int, mean: float) -> pd.DataFrame:
    x = rng.normal(mean, 1.0, rows)
    score = 1 / (1 + np.exp(-2.0 * x))
    return pd.DataFrame({"x": x, "score": score, "label": (rng.random(rows) < score).astype(int)})


def run() -> dict[str, object]:
    rng = np.random.default_rng(0)
    reference = make_frame(rng, 20_000, 0.0)
    analysis = pd.concat([make_frame(rng, CHUNK, m) for m in MEANS], ignore_index=True)
    analysis["window"] = np.repeat(np.arange(len(MEANS)), CHUNK)
    start = time.perf_counter()
    built = profile.build(reference, predictions=["score"], target="label")
    ours = [
        assess_performance(built, part.drop(columns=["label"]))[0]
        for _, part in analysis.groupby("window")
    ]
    seconds = time.perf_counter() - start
    realized = [
        assess_performance(built, part, target="label")[0].realized
        for _, part in analysis.groupby("window")
    ]
    result: dict[str, object] = {
        "otelml_seconds": seconds,
        "otelml": {m: [r.estimated[m] for r in ours] for m in METRICS},
        "realized": {m: [r[m] for r in realized if r is not None] for m in METRICS},
    }
    if (NANNYML_PYTHON.parent.parent / ".installed").exists():
        with tempfile.TemporaryDirectory() as directory:
            ref_path, cur_path = Path(directory) / "ref.parquet", Path(directory) / "cur.parquet"
            reference.to_parquet(ref_path)
            analysis.drop(columns=["window"]).to_parquet(cur_path)
            out = subprocess.run(
                [
                    str(NANNYML_PYTHON),
                    str(ROOT / "bench" / "nannyml_runner.py"),
                    str(ref_path),
                    str(cur_path),
                    str(CHUNK),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            nannyml = json.loads(out.stdout.strip().splitlines()[-1])
            result["nannyml_seconds"] = nannyml["seconds"]
            result["nannyml"] = nannyml["estimated"]
    return result


def report(result: dict[str, object]) -> None:
    ours, truth = result["otelml"], result["realized"]
    theirs = result.get("nannyml")
    assert isinstance(ours, dict) and isinstance(truth, dict)
    print("window  metric     realized  otelml   nannyml")
    for w, mean in enumerate(MEANS):
        for m in METRICS:
            other = f"{theirs[m][w]:.4f}" if isinstance(theirs, dict) else "n/a"
            print(f"{w} (x̄={mean:+.1f})  {m:<9}  {truth[m][w]:.4f}    {ours[m][w]:.4f}   {other}")
    line = f"time: otelml {result['otelml_seconds']:.3f} s (calibration + 4 windows)"
    if theirs is None:
        line += "; NannyML not installed (make bench-nannyml)"
    else:
        line += f", NannyML CBPE {result['nannyml_seconds']:.3f} s (fit + estimate)"
    print(line)


if __name__ == "__main__":
    report(run())
