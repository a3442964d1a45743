"""Performance of a data file's windows against a calibrated reference: `otelml drift`.

Without labels, the confidence-based estimate of every calibrated probability output (the
same computation as the gateway's, on the reference's buckets); with a `target` column, the
realized performance from the labels beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from scipy.stats import rankdata

from otelml.gateway.drift.batch import bin_column
from otelml.gateway.performance.estimated import positive_buckets
from otelml.gateway.performance.estimation import METRICS, estimate
from otelml.profile import NumericProfile, Profile


@dataclass(frozen=True)
class WindowPerformance:
    """One output's performance in one window (JSON-ready); NaN where undefined."""

    window: str
    output: str
    rows: int
    estimated: dict[str, float]
    stderr: dict[str, float]
    realized: dict[str, float] | None  # None: no target column

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def realized(
    labels: npt.NDArray[np.bool_], probability: npt.NDArray[np.float64], threshold: float
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and ROC AUC of labelled predictions."""
    predicted = probability > threshold
    tp = float(np.count_nonzero(predicted & labels))
    fp = float(np.count_nonzero(predicted & ~labels))
    fn = float(np.count_nonzero(~predicted & labels))
    positives, n = float(labels.sum()), float(len(labels))
    with np.errstate(invalid="ignore", divide="ignore"):
        ranks = rankdata(probability)
        auc = (ranks[labels].sum() - positives * (positives + 1) / 2) / (
            positives * (n - positives)
        )
        values = (
            float(np.count_nonzero(predicted == labels)) / n,
            tp / (tp + fp) if tp + fp else np.nan,
            tp / (tp + fn) if tp + fn else np.nan,
            2 * tp / (2 * tp + fp + fn) if tp + fp + fn else np.nan,
            float(auc),
        )
    return dict(zip(METRICS, values, strict=True))


def assess_performance(
    profile: Profile,
    table: pd.DataFrame,
    *,
    target: str | None = None,
    time_column: str | None = None,
    window: str | None = None,
) -> list[WindowPerformance]:
    """Each calibrated output of `profile` found in `table`, per window (or the whole)."""
    if time_column is None or window is None:
        parts = [("all", table)]
    else:
        times = pd.to_datetime(table[time_column], utc=True)
        parts = [(s.isoformat(), p) for s, p in table.groupby(times.dt.floor(window), sort=True)]
    results = []
    for name, calibration in profile.calibration.items():
        output = profile.predictions.get(name)
        if name not in table.columns or not isinstance(output, NumericProfile):
            continue
        above = positive_buckets(output, calibration.threshold)
        for label, part in parts:
            counts, _ = bin_column(output, part[name])
            found = estimate(counts, calibration.positive_rate, above)
            truth = None
            if target is not None:
                probability = pd.to_numeric(part[name], errors="coerce").to_numpy(np.float64)
                labels = pd.to_numeric(part[target], errors="coerce").to_numpy(np.float64)
                usable = np.isfinite(probability) & np.isfinite(labels)
                truth = realized(labels[usable] > 0.5, probability[usable], calibration.threshold)
            results.append(
                WindowPerformance(
                    window=label,
                    output=name,
                    rows=int(counts.sum()),
                    estimated={m: v for m, (v, _) in found.items()},
                    stderr={m: e for m, (_, e) in found.items()},
                    realized=truth,
                )
            )
    return results


def performance_table(results: list[WindowPerformance]) -> str:
    """One line per (window, output, metric): estimated ± stderr, realized when known."""
    lines = ["window  output  metric  estimated  stderr  realized"]
    for r in results:
        for metric in METRICS:
            known = "" if r.realized is None else f"{r.realized[metric]:.4f}"
            lines.append(
                f"{r.window}  {r.output}  {metric}  {r.estimated[metric]:.4f}  "
                f"{r.stderr[metric]:.4f}  {known}".rstrip()
            )
    return "\n".join(lines)
