"""Drift tests: which score decides, its threshold, and the default choice users know.

A test is a score plus a direction: distances flag drift at or above their threshold,
p-values below it. The default choice is Evidently's: with a small reference (≤ 1000 rows)
statistical tests — KS for numeric features with more than 5 distinct values, the z-test for
binary features, χ² otherwise, at p < 0.05; with a larger reference (where every test finds
significance) effect sizes — Wasserstein distance normed by the reference std for numeric
features, Jensen–Shannon distance otherwise, at 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from otelml.gateway.drift import scores
from otelml.profile import CategoricalProfile, FeatureProfile, NumericProfile

Array = npt.NDArray[np.float64]

SMALL_REFERENCE_ROWS = 1000
P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1


@dataclass(frozen=True)
class Method:
    name: str
    kind: Literal["distance", "p_value"]
    #: the `method` label of the score that decides (p-value tests expose `<name>_p`)
    label: str
    default_threshold: float

    def detected(self, value: Array, threshold: float | Array) -> npt.NDArray[np.bool_]:
        if self.kind == "p_value":
            return np.asarray(value < threshold)
        return np.asarray(value >= threshold)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("psi", "distance", "psi", DISTANCE_THRESHOLD),
        Method("kl", "distance", "kl", DISTANCE_THRESHOLD),
        Method("js", "distance", "js", DISTANCE_THRESHOLD),
        Method("hellinger", "distance", "hellinger", DISTANCE_THRESHOLD),
        Method("wasserstein", "distance", "wasserstein", DISTANCE_THRESHOLD),
        Method("ks", "p_value", "ks_p", P_VALUE_THRESHOLD),
        Method("chi2", "p_value", "chi2_p", P_VALUE_THRESHOLD),
        Method("z", "p_value", "z_p", P_VALUE_THRESHOLD),
    )
}


def default_method(feature: FeatureProfile, reference_rows: int) -> str:
    """Evidently's rule, from the reference profile alone."""
    numeric = isinstance(feature, NumericProfile) and feature.unique > 5
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if numeric:
            return "ks"
        return "z" if feature.unique == 2 else "chi2"
    return "wasserstein" if numeric else "js"


def usable(method: str, feature: FeatureProfile) -> str:
    """Wasserstein needs positions on a line: for categories, fall back to JS distance."""
    if method == "wasserstein" and isinstance(feature, CategoricalProfile):
        return "js"
    return method


def compute(
    method: str,
    reference: Array,
    current: Array,
    points: Array,
    reference_std: Array,
) -> dict[str, Array]:
    """The decision score (under its label) of every row, plus the statistic where it has one."""
    if method == "psi":
        return {"psi": scores.psi(reference, current)}
    if method == "kl":
        return {"kl": scores.kl(reference, current)}
    if method == "js":
        return {"js": scores.jensen_shannon(reference, current)}
    if method == "hellinger":
        return {"hellinger": scores.hellinger(reference, current)}
    if method == "wasserstein":
        return {"wasserstein": scores.wasserstein_normed(reference, current, points, reference_std)}
    if method == "ks":
        d, p_value = scores.ks(reference, current)
        return {"ks": d, "ks_p": p_value}
    if method == "chi2":
        _, p_value = scores.chi_square(reference, current)
        return {"chi2_p": p_value}
    if method == "z":
        _, p_value = scores.z_proportions(reference, current)
        return {"z_p": p_value}
    raise ValueError(f"unknown drift method {method!r}")
