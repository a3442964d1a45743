"""Train the example's model and write what the gateway and the load test need.

    python train.py [DIR]       # otelml's own environment; DIR defaults to this directory

The model predicts disease progression a year after baseline from ten measurements of 442
diabetes patients: scikit-learn's bundled `load_diabetes(scaled=False)`, whose `sex` (coded 1
and 2; the data set does not say which is which) is the categorical feature. Writes
`training.csv` (the features, the model's prediction `progression` and the true `target`) and,
with `otelml profile build`, `reference.json`: the training profile of the features and of the
prediction that the gateway compares live traffic with. The load test draws its requests and
their later ground truth from `training.csv`.

The service fits the same model at start-up (`fit()`: deterministic, a fraction of a second on
442 rows), so no model file has to match the serving environment's scikit-learn.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor

MODEL, VERSION, OUTPUT = "diabetes", "1", "progression"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def fit() -> HistGradientBoostingRegressor:
    """The model, fitted on the whole data set (columns in FEATURES order)."""
    data = load_diabetes(scaled=False)
    return HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(data.data, data.target)


def main(directory: Path) -> None:
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = frame["sex"].astype(int)
    frame[OUTPUT] = fit().predict(frame[FEATURES].to_numpy(dtype=float)).round(2)
    directory.mkdir(parents=True, exist_ok=True)
    training = directory / "training.csv"
    frame[[*FEATURES, OUTPUT, "target"]].to_csv(training, index=False)
    command = [
        *(str(Path(sys.executable).with_name("otelml")), "profile", "build", str(training)),
        *("-o", str(directory / "reference.json"), "--model", MODEL, "--version", VERSION),
        *("--prediction", OUTPUT, "--categorical", "sex", "--exclude", "target"),
    ]
    subprocess.run(command, check=True)
    mean_error = float(np.abs(frame[OUTPUT] - frame["target"]).mean())
    print(f"wrote {training} and reference.json; training MAE {mean_error:.1f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).absolute().parent)
