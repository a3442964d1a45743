"""Runs inside the NannyML bench environment: time CBPE on two files, chunk by chunk.

Usage: python nannyml_runner.py reference.parquet analysis.parquet CHUNK_ROWS → JSON on stdout.
Not part of the otelml package; NannyML is only a yardstick here.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import nannyml as nml
import pandas as pd

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def main() -> None:
    reference = pd.read_parquet(sys.argv[1])
    analysis = pd.read_parquet(sys.argv[2])
    chunk = int(sys.argv[3])
    for frame in (reference, analysis):
        frame["prediction"] = (frame["score"] > 0.5).astype(int)
    times = []
    estimates: dict[str, list[float]] = {}
    for _ in range(3):
        start = time.perf_counter()
        estimator = nml.CBPE(
            y_pred_proba="score",
            y_pred="prediction",
            y_true="label",
            metrics=METRICS,
            chunk_size=chunk,
            problem_type="classification_binary",
        )
        estimator.fit(reference)
        result = estimator.estimate(analysis.drop(columns=["label"]))
        times.append(time.perf_counter() - start)
        table = result.filter(period="analysis").to_df()
        estimates = {m: [float(v) for v in table[(m, "value")].tolist()] for m in METRICS}
    print(json.dumps({"seconds": statistics.median(times), "estimated": estimates}))


if __name__ == "__main__":
    main()
