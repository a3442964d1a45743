"""Calibration of a binary classifier's probabilities on its reference, per probability bucket.

The reference profile keeps, for a probability output, the reference's positive rate in each
of the output's buckets, made monotone by isotonic regression (pool adjacent violators over
the buckets, weighted by their counts): histogram binning made isotonic. The gateway turns a
window's bucket counts into an expected confusion matrix with it (confidence-based
performance estimation). numpy only: the gateway does not depend on scikit-learn.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def isotonic(values: npt.ArrayLike, weights: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The non-decreasing sequence closest to `values` in weighted least squares (PAV)."""
    y = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    means: list[float] = []
    mass: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(y.tolist(), w.tolist(), strict=True):
        means.append(value)
        mass.append(weight)
        sizes.append(1)
        # Merge backwards while the last two blocks violate the order.
        while len(means) > 1 and means[-2] > means[-1]:
            total = mass[-2] + mass[-1]
            merged = (
                (means[-2] * mass[-2] + means[-1] * mass[-1]) / total
                if total > 0
                else (means[-2] + means[-1]) / 2
            )
            means[-2:] = [merged]
            mass[-2:] = [total]
            sizes[-2:] = [sizes[-2] + sizes[-1]]
    return np.repeat(np.asarray(means), sizes)


def bucket_positive_rate(
    buckets: npt.NDArray[np.intp], labels: npt.NDArray[np.bool_], size: int
) -> npt.NDArray[np.float64]:
    """Per bucket, the isotonic positive rate of the labels that fall in it (empty buckets
    take their neighbours' value: they carry no weight)."""
    counts = np.bincount(buckets, minlength=size).astype(np.float64)
    positives = np.bincount(buckets, weights=labels.astype(np.float64), minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(counts > 0, positives / counts, 0.0)
    filled = counts > 0
    if filled.any():
        # Empty buckets: the rate of the nearest filled bucket below (above for leading ones).
        index = np.maximum.accumulate(np.where(filled, np.arange(size), -1))
        first = int(np.flatnonzero(filled)[0])
        rate = rate[np.where(index < 0, first, index)]
    return isotonic(rate, counts)
