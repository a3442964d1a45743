"""Which slice of the traffic carries a window's drift: pure functions of count arrays.

A slice (the observations whose trace had `service.version = 2`, or `http.route = /x`)
explains the drift when leaving it out makes the drift go away: `explained` is the relative
drop of the window's PSI against the reference when the slice's counts are subtracted,
clipped to [0, 1]. Beside it, how far the slice alone is from the reference (its own PSI)
and its share of the window's observations. A shift carried by a 30 % slice scores ≈ 1 for
it (the rest looks like the reference); a shift spread evenly over all slices scores ≈ 0 for
each (the rest is as shifted as the whole), with slice PSIs alike.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from otelml.gateway.drift import scores


class Attribution(NamedTuple):
    """Per slice (same shape as the slices' leading axes)."""

    explained: npt.NDArray[np.float64]
    traffic_share: npt.NDArray[np.float64]
    slice_score: npt.NDArray[np.float64]  # NaN where the slice had no observations


def attribute(reference: npt.ArrayLike, slices: npt.ArrayLike) -> Attribution:
    """`slices`: window counts (..., slices, bins) that sum over the slices axis to the window."""
    counts = np.asarray(slices, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    shape = counts.shape[:-1]
    total = counts.sum(axis=-2, keepdims=True)  # (..., 1, bins)
    flat = counts.reshape(-1, counts.shape[-1])
    rest = (total - counts).reshape(flat.shape)
    refs = np.broadcast_to(ref, flat.shape)
    whole = np.broadcast_to(total, counts.shape).reshape(flat.shape)
    base = scores.psi(refs, whole)
    without = np.nan_to_num(scores.psi(refs, rest), nan=0.0)  # nothing left: no drift left
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(base > 0, (base - without) / base, 0.0)
        traffic = flat.sum(axis=1) / whole.sum(axis=1)
    return Attribution(
        explained=np.clip(np.nan_to_num(explained), 0.0, 1.0).reshape(shape),
        traffic_share=np.nan_to_num(traffic).reshape(shape),
        slice_score=scores.psi(refs, flat).reshape(shape),
    )
