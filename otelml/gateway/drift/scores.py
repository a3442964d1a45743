"""Drift scores: pure functions of binned distributions (numpy/scipy only; no I/O, no clock).

Every function takes `reference` and `current` bucket counts of the same shape — one row per
series, `(series, bins)`, or a single 1-d row — and returns one value per row, so one call
scores every feature of a step. Rows are zero-padded to a common width where bin counts
differ; a padded bin is empty on both sides and changes no score.

Conventions (those of Evidently, the rule users know):
- proportions `p = reference / Σ reference`, `q = current / Σ current`;
- where a formula takes a logarithm of a proportion, a bin empty on one side is smoothed by
  replacing its proportion 0 with `EPSILON = 1e-4` (not renormalised, as Evidently does); a bin
  empty on both sides carries no information and is left out;
- a row whose reference or current total is 0 scores NaN (nothing to compare).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats

Counts = npt.ArrayLike
Scores = npt.NDArray[np.float64]

EPSILON = 1e-4


def _rows(counts: Counts) -> npt.NDArray[np.float64]:
    array = np.asarray(counts, dtype=np.float64)
    return array[np.newaxis, :] if array.ndim == 1 else array


def _proportions(
    reference: Counts, current: Counts
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    ref, cur = _rows(reference), _rows(current)
    if ref.shape != cur.shape:
        raise ValueError(f"reference {ref.shape} and current {cur.shape} bins differ")
    ref_total, cur_total = ref.sum(axis=1), cur.sum(axis=1)
    empty = (ref_total == 0) | (cur_total == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = ref / ref_total[:, np.newaxis]
        q = cur / cur_total[:, np.newaxis]
    p[empty] = 0.0
    q[empty] = 0.0
    return p, q, empty


def _finish(values: npt.NDArray[np.float64], empty: npt.NDArray[np.bool_]) -> Scores:
    out = np.asarray(values, dtype=np.float64).copy()
    out[empty] = np.nan
    return out


def _smoothed(
    p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """ε-smoothed proportions of the bins in use (non-empty on either side); 1 elsewhere, so
    that log terms of unused bins are exactly 0."""
    used = (p > 0) | (q > 0)
    ps = np.where(used, np.where(p == 0.0, EPSILON, p), 1.0)
    qs = np.where(used, np.where(q == 0.0, EPSILON, q), 1.0)
    return ps, qs, used


def psi(reference: Counts, current: Counts) -> Scores:
    """Population stability index: Σ (q − p) · ln(q / p), zero proportions smoothed to ε.

    Symmetric (it is KL(q‖p) + KL(p‖q) on the smoothed proportions): boxkite's "KL" panel.
    """
    p, q, empty = _proportions(reference, current)
    ps, qs, _ = _smoothed(p, q)
    return _finish(((qs - ps) * np.log(qs / ps)).sum(axis=1), empty)


def kl(reference: Counts, current: Counts) -> Scores:
    """Kullback–Leibler divergence KL(current ‖ reference) = Σ q · ln(q / p), in nats.

    Proportions smoothed to ε where zero, then renormalised (as `scipy.stats.entropy` does).
    """
    p, q, empty = _proportions(reference, current)
    ps, qs, used = _smoothed(p, q)
    ps = np.where(used, ps, 0.0)
    qs = np.where(used, qs, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ps = ps / ps.sum(axis=1, keepdims=True)
        qs = qs / qs.sum(axis=1, keepdims=True)
        terms = np.where(used, qs * np.log(qs / ps), 0.0)
    return _finish(terms.sum(axis=1), empty)


def jensen_shannon(reference: Counts, current: Counts) -> Scores:
    """Jensen–Shannon *distance* (the square root of the divergence), natural log: [0, √ln 2].

    No smoothing needed: with m = (p + q) / 2, terms with p = 0 or q = 0 contribute 0.
    """
    p, q, empty = _proportions(reference, current)
    m = (p + q) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        kl_pm = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1)
        kl_qm = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    divergence = np.maximum((kl_pm + kl_qm) / 2.0, 0.0)
    return _finish(np.sqrt(divergence), empty)


def hellinger(reference: Counts, current: Counts) -> Scores:
    """Hellinger distance: ‖√p − √q‖₂ / √2, in [0, 1]."""
    p, q, empty = _proportions(reference, current)
    return _finish(np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(axis=1) / 2.0), empty)


def bin_points(
    edges: npt.ArrayLike, means: Sequence[float | None] | None = None
) -> npt.NDArray[np.float64]:
    """A representative value per bucket of `le` edges: the reference's mean of the bucket
    where known (`means`, one per bucket, None where empty), else the midpoint of
    (e[i−1], e[i]]; the under- and overflow buckets sit on the outermost edges.

    Means matter for skewed columns: the last bucket of an exponential spans a long tail whose
    midpoint lies far beyond where its values are, and would inflate every distance measured
    across it (a normed Wasserstein of ~0.1 between two samples of one distribution)."""
    e = np.asarray(edges, dtype=np.float64)
    if len(e) == 1:
        points = np.array([e[0], e[0]])
    else:
        points = np.concatenate([[e[0]], (e[:-1] + e[1:]) / 2.0, [e[-1]]])
    if means is not None and len(means) == len(points):
        known = np.array([m is not None and np.isfinite(m) for m in means])
        points[known] = np.asarray([m for m in means if m is not None and np.isfinite(m)])
        points = np.maximum.accumulate(points)  # keep the order however the means fell
    return points


def wasserstein(reference: Counts, current: Counts, points: npt.ArrayLike) -> Scores:
    """Earth mover's distance W₁ between the binned distributions placed at `points`.

    W₁ = Σᵢ |P(i) − Q(i)| · (xᵢ₊₁ − xᵢ) with P, Q the cumulative proportions: exactly
    `scipy.stats.wasserstein_distance(points, points, reference, current)`. `points` is one row
    per series (or one row for all), zero-padded like the counts.
    """
    p, q, empty = _proportions(reference, current)
    x = np.broadcast_to(_rows(points), p.shape)
    gaps = np.diff(x, axis=1)
    gaps = np.where(gaps > 0, gaps, 0.0)  # padding repeats the last point: no distance
    cdf_gap = np.abs(np.cumsum(p, axis=1) - np.cumsum(q, axis=1))[:, :-1]
    return _finish((cdf_gap * gaps).sum(axis=1), empty)


def wasserstein_normed(
    reference: Counts, current: Counts, points: npt.ArrayLike, reference_std: npt.ArrayLike
) -> Scores:
    """W₁ divided by the reference standard deviation (Evidently's numeric drift score)."""
    std = np.asarray(reference_std, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(wasserstein(reference, current, points) / np.where(std > 0, std, np.nan))


def ks(reference: Counts, current: Counts) -> tuple[Scores, Scores]:
    """Two-sample Kolmogorov–Smirnov on binned data: (D, asymptotic p-value).

    D = maxᵢ |P(i) − Q(i)| over the bucket boundaries — what `scipy.stats.ks_2samp` finds on
    the values placed at their buckets' points; p-value as ks_2samp's `method="asymp"`:
    `kstwo.sf(D, round(n·m / (n + m)))`. Binning can only hide differences inside a bucket,
    so D here is a lower bound of the raw-data D.
    """
    ref, cur = _rows(reference), _rows(current)
    p, q, empty = _proportions(ref, cur)
    d = np.abs(np.cumsum(p, axis=1) - np.cumsum(q, axis=1)).max(axis=1)
    n, m = ref.sum(axis=1), cur.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        effective = np.round(n * m / (n + m))
    p_value = stats.kstwo.sf(d, np.where(effective >= 1, effective, 1))
    return _finish(d, empty), _finish(np.clip(p_value, 0.0, 1.0), empty)


def chi_square(reference: Counts, current: Counts) -> tuple[Scores, Scores]:
    """Pearson's χ² goodness of fit of the current counts to the reference proportions:
    (statistic, p-value), over the categories present on either side.

    Expected counts are the reference proportions times the current total (Evidently's
    `chi_stat_test`). A category absent from the reference but present now has expected 0:
    the statistic is infinite and the p-value 0 (certain drift) rather than a division error.
    """
    ref, cur = _rows(reference), _rows(current)
    p, _, empty = _proportions(ref, cur)
    expected = p * cur.sum(axis=1, keepdims=True)
    used = (expected > 0) | (cur > 0)
    impossible = ((expected == 0) & (cur > 0)).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(expected > 0, (cur - expected) ** 2 / expected, 0.0)
    statistic = terms.sum(axis=1)
    dof = np.maximum(used.sum(axis=1) - 1, 1)
    p_value = stats.chi2.sf(statistic, dof)
    statistic = np.where(impossible, np.inf, statistic)
    p_value = np.where(impossible, 0.0, p_value)
    return _finish(statistic, empty), _finish(p_value, empty)


def z_proportions(reference: Counts, current: Counts) -> tuple[Scores, Scores]:
    """Two-proportion z-test for a binary feature: (z, two-sided p-value).

    The counts' first bin is the "success" category (the reference's most frequent one); all
    other bins together are the other outcome. A pooled proportion of 0 or 1 (no variation on
    either side) means no evidence of a difference: z = 0, p = 1.
    """
    ref, cur = _rows(reference), _rows(current)
    _, _, empty = _proportions(ref, cur)
    n1, n2 = ref.sum(axis=1), cur.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = ref[:, 0] / n1, cur[:, 0] / n2
        pooled = (ref[:, 0] + cur[:, 0]) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.where(se > 0, (p1 - p2) / se, 0.0)
    p_value = 2.0 * stats.norm.sf(np.abs(z))
    return _finish(z, empty), _finish(p_value, empty)


def contributions(reference: Counts, current: Counts) -> npt.NDArray[np.float64]:
    """Each bin's PSI term (q − p) · ln(q / p): where a shift came from, bin by bin."""
    p, q, _ = _proportions(reference, current)
    ps, qs, _ = _smoothed(p, q)
    return np.asarray((qs - ps) * np.log(qs / ps))
