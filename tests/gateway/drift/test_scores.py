"""Drift scores against scipy on the same binned data (tolerance: 1e-9 relative unless said)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance
from scipy.special import rel_entr

from otelml.gateway.drift import scores

REF = np.array([10, 40, 30, 15, 5, 0])
CUR = np.array([5, 20, 30, 25, 15, 5])
EDGES = np.array([-1.0, 0.0, 1.0, 2.0, 3.0])

counts = st.lists(st.integers(0, 500), min_size=2, max_size=12)


def _pair(draw_counts: list[int], other: list[int]) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(draw_counts), len(other))
    ref, cur = np.array(draw_counts[:n]), np.array(other[:n])
    ref[0] += 2  # never an empty side (nor one too small for the asymptotic KS)
    cur[-1] += 2
    return ref, cur


def test_psi_by_hand() -> None:
    p, q = REF / REF.sum(), CUR / CUR.sum()
    p = np.where(p == 0, 1e-4, p)
    expected = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert scores.psi(REF, CUR)[0] == pytest.approx(expected, rel=1e-12)
    assert scores.psi(REF, REF)[0] == 0.0


@settings(max_examples=100, deadline=None)
@given(counts, counts)
def test_scores_equal_scipy(a: list[int], b: list[int]) -> None:
    ref, cur = _pair(a, b)
    p, q = ref / ref.sum(), cur / cur.sum()
    used = (p > 0) | (q > 0)  # bins empty on both sides carry nothing
    ps, qs = np.where(p == 0, 1e-4, p)[used], np.where(q == 0, 1e-4, q)[used]
    assert scores.psi(ref, cur)[0] == pytest.approx(
        float(rel_entr(qs, ps).sum() + rel_entr(ps, qs).sum()), rel=1e-9, abs=1e-12
    )
    assert scores.kl(ref, cur)[0] == pytest.approx(
        float(stats.entropy(qs, ps)), rel=1e-9, abs=1e-12
    )
    assert scores.jensen_shannon(ref, cur)[0] == pytest.approx(
        float(distance.jensenshannon(p, q)), rel=1e-7, abs=1e-7
    )
    assert scores.hellinger(ref, cur)[0] == pytest.approx(
        float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2)), rel=1e-12, abs=1e-12
    )
    points = np.cumsum(np.arange(1, len(ref) + 1, dtype=float))  # strictly increasing
    assert scores.wasserstein(ref, cur, points)[0] == pytest.approx(
        float(stats.wasserstein_distance(points, points, ref, cur)), rel=1e-9, abs=1e-12
    )
    d, p_value = scores.ks(ref, cur)
    raw = stats.ks_2samp(np.repeat(points, ref), np.repeat(points, cur), method="asymp")
    assert d[0] == pytest.approx(raw.statistic, rel=1e-12, abs=1e-12)
    assert p_value[0] == pytest.approx(raw.pvalue, rel=1e-9, abs=1e-12)
    statistic, chi_p = scores.chi_square(ref, cur)
    expected = p * cur.sum()
    if ((expected == 0) & (cur > 0)).any():
        assert statistic[0] == math.inf and chi_p[0] == 0.0
    else:
        used = (expected > 0) | (cur > 0)
        reference = stats.chisquare(cur[used], expected[used])
        assert statistic[0] == pytest.approx(reference.statistic, rel=1e-9)
        assert chi_p[0] == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-15)


def test_z_test_matches_the_two_proportion_formula() -> None:
    ref, cur = np.array([700, 300]), np.array([600, 400])
    z, p_value = scores.z_proportions(ref, cur)
    p1, p2, pooled = 0.7, 0.6, 1300 / 2000
    expected_z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 1000))
    assert z[0] == pytest.approx(expected_z, rel=1e-12)
    assert p_value[0] == pytest.approx(2 * stats.norm.sf(abs(expected_z)), rel=1e-12)
    assert scores.z_proportions([10, 0], [5, 0])[1][0] == 1.0  # no variation: no evidence


def test_bin_points_and_normed_wasserstein() -> None:
    points = scores.bin_points(EDGES)
    assert points.tolist() == [-1.0, -0.5, 0.5, 1.5, 2.5, 3.0]
    raw = stats.wasserstein_distance(points, points, REF, CUR)
    assert scores.wasserstein_normed(REF, CUR, points, 2.0)[0] == pytest.approx(raw / 2.0)


def test_many_rows_at_once_equal_row_by_row_and_padding_is_neutral() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 100, (7, 9))
    cur = rng.integers(0, 100, (7, 9))
    ref[:, -2:] = 0  # padded bins: empty on both sides
    cur[:, -2:] = 0
    for fn in (scores.psi, scores.kl, scores.jensen_shannon, scores.hellinger):
        batch = fn(ref, cur)
        single = [fn(ref[i, :-2], cur[i, :-2])[0] for i in range(7)]
        assert batch == pytest.approx(single, rel=1e-12)
    d, _p = scores.ks(ref, cur)
    assert d == pytest.approx([scores.ks(ref[i, :-2], cur[i, :-2])[0][0] for i in range(7)])
    points = np.tile(np.r_[np.arange(7.0), 6.0, 6.0], (7, 1))  # padding repeats the last point
    assert scores.wasserstein(ref, cur, points) == pytest.approx(
        [scores.wasserstein(ref[i, :-2], cur[i, :-2], np.arange(7.0))[0] for i in range(7)]
    )


def test_an_empty_side_scores_nan_not_zero() -> None:
    assert math.isnan(scores.psi([1, 2], [0, 0])[0])
    assert math.isnan(scores.ks([0, 0], [1, 2])[1][0])


def test_contributions_point_at_the_bin_that_moved() -> None:
    contributions = scores.contributions([50, 50, 0], [50, 10, 40])
    assert int(np.argmax(contributions)) == 2
    assert contributions.sum() == pytest.approx(scores.psi([50, 50, 0], [50, 10, 40])[0])


def test_bucket_means_keep_a_skewed_tail_from_inflating_wasserstein() -> None:
    """Two samples of one exponential: with the reference's bucket means as points the binned
    normed Wasserstein stays near the raw one; with midpoints the long last bucket inflates it."""
    from otelml import profile

    rng = np.random.default_rng(2026)
    reference = pd.DataFrame({"x": rng.exponential(24, 20_000).round()})
    current = rng.exponential(24, 2_000).round()
    feature = profile.build(reference).features["x"]
    assert isinstance(feature, profile.NumericProfile) and feature.bucket_means is not None
    edges = np.asarray(feature.edges)
    live = np.bincount(np.searchsorted(edges, current, side="left"), minlength=len(edges) + 1)
    ref = np.asarray(feature.counts)
    with_means = scores.wasserstein_normed(
        ref, live, scores.bin_points(edges, feature.bucket_means), feature.std
    )[0]
    with_midpoints = scores.wasserstein_normed(ref, live, scores.bin_points(edges), feature.std)[0]
    raw = stats.wasserstein_distance(reference["x"], current) / feature.std
    assert abs(with_means - raw) < 0.02 < abs(with_midpoints - raw)
    points = scores.bin_points(edges, feature.bucket_means)
    assert points[-2] == pytest.approx(reference["x"][reference["x"] > edges[-2]].mean())
