"""Performance metrics: pure functions of (truth, prediction) arrays, as scikit-learn defines them.

- classification: accuracy; precision, recall and F1 per class and macro-averaged over the
  classes present in either array (scikit-learn's default labels), 0 where undefined
  (`zero_division=0`);
- probabilities of a binary outcome: log-loss, probabilities clipped to [1e-15, 1 − 1e-15];
- regression: MAE, RMSE, MAPE (|y − ŷ| / max(|y|, machine ε), as scikit-learn does).
Keys are (metric, class); class is "" for metrics that have none and "__macro__" for averages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

MACRO = "__macro__"
Metrics = dict[tuple[str, str], float]


def classification(truth: Sequence[str], predicted: Sequence[str]) -> Metrics:
    y_true = np.asarray(truth, dtype=object)
    y_pred = np.asarray(predicted, dtype=object)
    if len(y_true) == 0:
        return {}
    out: Metrics = {("accuracy", ""): float(np.mean(y_true == y_pred))}
    classes = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    precisions, recalls, f1s = [], [], []
    for label in classes:
        tp = float(np.sum((y_pred == label) & (y_true == label)))
        predicted_positive = float(np.sum(y_pred == label))
        actual_positive = float(np.sum(y_true == label))
        precision = tp / predicted_positive if predicted_positive else 0.0
        recall = tp / actual_positive if actual_positive else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[("precision", label)] = precision
        out[("recall", label)] = recall
        out[("f1", label)] = f1
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(f1)
    out[("precision", MACRO)] = float(np.mean(precisions))
    out[("recall", MACRO)] = float(np.mean(recalls))
    out[("f1", MACRO)] = float(np.mean(f1s))
    return out


def log_loss(truth: npt.ArrayLike, probability: npt.ArrayLike) -> float:
    """Binary cross-entropy of P(truth = 1)."""
    y = np.asarray(truth, dtype=np.float64)
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def regression(truth: npt.ArrayLike, predicted: npt.ArrayLike) -> Metrics:
    y = np.asarray(truth, dtype=np.float64)
    y_hat = np.asarray(predicted, dtype=np.float64)
    if len(y) == 0:
        return {}
    error = y - y_hat
    return {
        ("mae", ""): float(np.mean(np.abs(error))),
        ("rmse", ""): float(np.sqrt(np.mean(error**2))),
        ("mape", ""): float(
            np.mean(np.abs(error) / np.maximum(np.abs(y), np.finfo(np.float64).eps))
        ),
    }


def evaluate(truth: Sequence[float | str], predicted: Sequence[float | str]) -> Metrics:
    """The metrics that fit the values.

    Values arrive as floats (OTLP doubles) or labels (strings, ints, bools as "true"/"false").
    Floats on both sides are a regression; float predictions in [0, 1] against 0/1 truths are
    probabilities (log-loss, and classification at 0.5); anything else is classification.
    """
    if not truth:
        return {}
    floats_predicted = all(isinstance(v, float) for v in predicted)
    binary = [_binary(v) for v in truth]
    probabilities = floats_predicted and all(0.0 <= v <= 1.0 for v in predicted)  # type: ignore[operator]
    out: Metrics = {}
    if floats_predicted and all(isinstance(v, float) for v in truth):
        out.update(regression(truth, predicted))
    if probabilities and all(b is not None for b in binary):
        y = np.asarray(binary, dtype=np.float64)
        out[("log_loss", "")] = log_loss(y, predicted)
        labels = ["1" if float(v) >= 0.5 else "0" for v in predicted]
        out.update(classification(["1" if b else "0" for b in binary], labels))
        return out
    if out:
        return out
    return classification([_label(v) for v in truth], [_label(v) for v in predicted])


def _binary(value: float | str) -> bool | None:
    """0/1 truths in any spelling; None when the value is not binary."""
    if isinstance(value, float):
        return bool(value) if value in (0.0, 1.0) else None
    lowered = value.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    return None


def _label(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
