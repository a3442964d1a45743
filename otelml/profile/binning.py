"""THE binning rule shared by the reference profile and the gateway.

Drift is only meaningful when reference and live values land in buckets by exactly the
same rule, so both sides call these functions instead of re-deriving them.

Rule: with strictly increasing finite upper bounds ``edges`` (Prometheus ``le``
semantics), a value ``v`` goes to bucket ``i = searchsorted(edges, v, side="left")``,
i.e. ``edges[i-1] < v <= edges[i]``. Values ``<= edges[0]`` go to bucket 0 (underflow is
folded into the first bucket) and values ``> edges[-1]`` to the extra last bucket
``len(edges)`` (``+Inf``). Counts are ``bincount(i, minlength=len(edges) + 1)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def bucket_index(
    edges: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    """Bucket of each value: ``searchsorted(edges, values, side="left")``.

    Callers must drop NaN (and ±inf, which the profile treats as missing) first: NaN
    would silently land in the ``+Inf`` bucket.
    """
    return np.searchsorted(edges, values, side="left")


def bucket_counts(
    edges: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Number of values per bucket, ``len(edges) + 1`` entries (the last one is ``+Inf``)."""
    counts: npt.NDArray[np.int64] = np.bincount(
        bucket_index(edges, values), minlength=len(edges) + 1
    )
    return counts


def quantile_edges(values: npt.NDArray[np.float64], bins: int) -> npt.NDArray[np.float64]:
    """Upper bounds of ``bins`` equal-frequency buckets of the finite, non-empty ``values``.

    The distinct values of ``quantile(values, linspace(0, 1, bins + 1))`` (linear
    interpolation), so ``edges[0]`` is the minimum and ``edges[-1]`` the maximum; ties
    collapse buckets, and a constant column yields the single edge ``(value,)``.
    """
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, bins + 1), method="linear")
    edges: npt.NDArray[np.float64] = np.unique(quantiles)
    return edges
