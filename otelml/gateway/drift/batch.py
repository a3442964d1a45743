"""Drift of a data file against a reference profile: the engine's tests, without a service.

For data that never went through a model service (the batch monitoring people run with
Evidently and a scheduler): bin every profiled column of the current table on the reference's
own bins, then score all columns at once with the same methods and thresholds as the gateway.
With a time column, every window of the table is assessed separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from otelml.gateway.drift import methods, scores
from otelml.gateway.drift.rules import Rule, RuleLike
from otelml.profile import FeatureProfile, NumericProfile, Profile
from otelml.profile.binning import bucket_counts
from otelml.profile.categories import category_label


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict (JSON-ready)."""

    window: str
    role: str  # "feature" or "prediction"
    column: str
    method: str
    score: float  # the deciding value: a distance, or a p-value for statistical tests
    threshold: float
    drift: bool | None  # None: fewer rows than min_samples
    psi: float
    observations: int
    missing: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def bin_column(feature: FeatureProfile, column: pd.Series) -> tuple[np.ndarray, int]:
    """Counts of a column on the reference's bins (numeric) or categories (+ other); missing."""
    if isinstance(feature, NumericProfile):
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        edges = np.asarray(feature.edges)
        return bucket_counts(edges, finite), int(len(values) - len(finite))
    slot = {c: i for i, c in enumerate(feature.categories)}
    other = len(feature.categories)
    counts = np.zeros(other + 1, dtype=np.int64)
    # Count the raw values first (vectorised), then label only the distinct ones.
    distinct = column.value_counts(dropna=True)
    for value, count in distinct.items():
        counts[slot.get(category_label(value), other)] += int(count)
    return counts, int(len(column) - int(distinct.sum()))


def assess(
    profile: Profile,
    table: pd.DataFrame,
    *,
    window: str = "all",
    method: str = "auto",
    rules: Mapping[str, RuleLike] | None = None,
    min_samples: int = 1,
) -> list[ColumnDrift]:
    """Every profiled column present in `table`, scored in one vectorised pass per method."""
    columns: list[tuple[str, str, FeatureProfile]] = [
        (role, name, feature)
        for role, features in (("feature", profile.features), ("prediction", profile.predictions))
        for name, feature in features.items()
        if name in table.columns
    ]
    if not columns:
        return []
    binned = [bin_column(feature, table[name]) for _, name, feature in columns]
    matrices = _Matrices([f for _, _, f in columns], [counts for counts, _ in binned])
    chosen = [
        _method(feature, (rules or {}).get(name) or Rule(method), profile.rows)
        for _, name, feature in columns
    ]
    decision = np.full(len(columns), np.nan)
    for name in {c[0] for c in chosen}:
        mask = np.array([c[0] == name for c in chosen])
        decision[mask] = matrices.decide(name, mask)
    psi = scores.psi(matrices.reference, matrices.current)
    out = []
    for i, ((role, name, _), (counts, missing)) in enumerate(zip(columns, binned, strict=True)):
        method_name, threshold = chosen[i]
        observations = int(counts.sum())
        enough = observations >= min_samples and not np.isnan(decision[i])
        detected = (
            bool(methods.METHODS[method_name].detected(decision[i : i + 1], threshold)[0])
            if enough
            else None
        )
        out.append(
            ColumnDrift(
                window=window,
                role=role,
                column=name,
                method=method_name,
                score=float(decision[i]),
                threshold=threshold,
                drift=detected,
                psi=float(psi[i]),
                observations=observations,
                missing=missing,
            )
        )
    return out


def _method(feature: FeatureProfile, rule: RuleLike, reference_rows: int) -> tuple[str, float]:
    """The test a column gets (the rule's, or the default rule's) and its threshold."""
    name = rule.method if rule.method != "auto" else methods.default_method(feature, reference_rows)
    name = methods.usable(name, feature)
    return name, rule.threshold or methods.METHODS[name].default_threshold


class _Matrices:
    """Reference and current counts of every column as zero-padded rows, with bin positions
    (for Wasserstein) and reference standard deviations: what the methods score at once."""

    def __init__(self, features: list[FeatureProfile], counts: list[np.ndarray]) -> None:
        width = max(len(feature.counts) for feature in features)
        self.reference = np.zeros((len(features), width))
        self.current = np.zeros((len(features), width))
        self.points = np.zeros((len(features), width))
        self.std = np.full(len(features), np.nan)
        for i, (feature, current) in enumerate(zip(features, counts, strict=True)):
            n = len(feature.counts)
            self.reference[i, :n] = feature.counts
            self.current[i, :n] = current
            if isinstance(feature, NumericProfile):
                row_points = scores.bin_points(feature.edges, feature.bucket_means)
                self.std[i] = feature.std
            else:
                row_points = np.arange(n, dtype=np.float64)
            self.points[i, :n] = row_points
            self.points[i, n:] = row_points[-1]

    def decide(self, method: str, rows: np.ndarray) -> np.ndarray:
        """The deciding value of `method` for the selected rows."""
        computed = methods.compute(
            method, self.reference[rows], self.current[rows], self.points[rows], self.std[rows]
        )
        return np.asarray(computed[methods.METHODS[method].label])


def assess_windows(
    profile: Profile,
    table: pd.DataFrame,
    *,
    time_column: str | None = None,
    window: str | None = None,
    method: str = "auto",
    min_samples: int = 1,
) -> list[ColumnDrift]:
    """The whole table, or each `window` (a pandas frequency such as "1h", "1D") of it."""
    if time_column is None or window is None:
        return assess(profile, table, method=method, min_samples=min_samples)
    times = pd.to_datetime(table[time_column], utc=True)
    results = []
    for start, part in table.groupby(times.dt.floor(window), sort=True):
        results += assess(
            profile, part, window=start.isoformat(), method=method, min_samples=min_samples
        )
    return results
