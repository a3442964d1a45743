"""Runs inside the Evidently bench environment (pandas < 3): time DataDriftPreset on two files.

Usage: python evidently_runner.py reference.parquet current.parquet  → JSON on stdout.
Not part of the otelml package; Evidently is only a yardstick here.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def main() -> None:
    reference = pd.read_parquet(sys.argv[1])
    current = pd.read_parquet(sys.argv[2])
    times, drifted, methods = [], set(), {}
    for _ in range(3):
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        times.append(time.perf_counter() - start)
        drifted.clear()
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if "ValueDrift" not in config["type"]:
                continue
            p_value = "p_value" in config["method"]
            value, threshold = metric["value"], config["threshold"]
            if (value < threshold) if p_value else (value >= threshold):
                drifted.add(config["column"])
            methods[config["column"]] = config["method"]
    print(
        json.dumps(
            {"seconds": statistics.median(times), "drifted": sorted(drifted), "methods": methods}
        )
    )


if __name__ == "__main__":
    main()
