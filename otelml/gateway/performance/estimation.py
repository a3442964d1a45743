"""Confidence-based performance estimation (CBPE) from a window's probability buckets alone.

With probabilities calibrated on the reference (`profile.calibration`), a prediction in
bucket b is positive with probability `rate[b]`; a window's bucket counts then give the
expected confusion matrix, and from it accuracy, precision, recall, F1 and ROC AUC, before
any label arrives. The sampling uncertainty is the standard deviation of the realized metric
when each bucket's labels are drawn from its rate (a parametric bootstrap, fixed seed).

It holds while the model's P(y | probability) is the reference's: covariate shift moves the
buckets' counts, which the estimate follows; concept drift changes the rates themselves,
which no label-free method can see.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
#: Label draws behind each standard error.
DRAWS = 200


def _metrics(
    counts: npt.NDArray[np.float64],
    positives: npt.NDArray[np.float64],
    predicted: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float64]:
    """Per row (a draw, or the expectation): the metrics of bucket counts and positives.

    `counts`, `positives`: (rows, buckets); buckets in increasing probability order."""
    negatives = counts - positives
    tp = positives[:, predicted].sum(axis=1)
    fp = negatives[:, predicted].sum(axis=1)
    fn = positives[:, ~predicted].sum(axis=1)
    tn = negatives[:, ~predicted].sum(axis=1)
    n = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = (tp + tn) / n
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
        # ROC AUC with the buckets as scores (ties within a bucket count one half), from the
        # highest bucket down: the trapezoids under (FPR, TPR).
        pos, neg = positives[:, ::-1], negatives[:, ::-1]
        below_neg = neg.sum(axis=1, keepdims=True) - np.cumsum(neg, axis=1)
        auc = (pos * (below_neg + neg / 2)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
    return np.stack([accuracy, precision, recall, f1, auc], axis=1)


def estimate(
    counts: npt.ArrayLike, rate: npt.ArrayLike, positive_buckets: npt.ArrayLike, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """metric → (estimate, standard error) for one window (NaN where undefined).

    `counts`: the window's observations per bucket; `rate`: each bucket's calibrated
    positive probability; `positive_buckets`: which buckets are predicted positive."""
    n = np.asarray(counts, dtype=np.float64)
    p = np.asarray(rate, dtype=np.float64)
    predicted = np.asarray(positive_buckets, dtype=bool)
    expected = _metrics(n[None, :], (n * p)[None, :], predicted)[0]
    rng = np.random.default_rng(seed)
    drawn = rng.binomial(n.astype(np.int64), p, size=(DRAWS, len(n))).astype(np.float64)
    spread = np.nanstd(_metrics(np.broadcast_to(n, drawn.shape), drawn, predicted), axis=0)
    return {
        name: (float(value), float(error))
        for name, value, error in zip(METRICS, expected, spread, strict=True)
    }
