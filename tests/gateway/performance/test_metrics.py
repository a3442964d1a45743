"""Performance metrics equal scikit-learn's on the same arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from otelml.gateway.performance import metrics

labels = st.lists(st.sampled_from(["cat", "dog", "eel"]), min_size=1, max_size=40)


@settings(max_examples=80, deadline=None)
@given(labels, st.data())
def test_classification_equals_scikit_learn(truth: list[str], data: st.DataObject) -> None:
    predicted = data.draw(
        st.lists(st.sampled_from(["cat", "dog", "eel"]), min_size=len(truth), max_size=len(truth))
    )
    got = metrics.classification(truth, predicted)
    classes = sorted(set(truth) | set(predicted))
    precision, recall, f1, _ = sk.precision_recall_fscore_support(
        truth, predicted, labels=classes, zero_division=0
    )
    assert got[("accuracy", "")] == pytest.approx(sk.accuracy_score(truth, predicted))
    for i, label in enumerate(classes):
        assert got[("precision", label)] == pytest.approx(precision[i])
        assert got[("recall", label)] == pytest.approx(recall[i])
        assert got[("f1", label)] == pytest.approx(f1[i])
    macro = sk.precision_recall_fscore_support(truth, predicted, average="macro", zero_division=0)
    assert got[("precision", "__macro__")] == pytest.approx(macro[0])
    assert got[("recall", "__macro__")] == pytest.approx(macro[1])
    assert got[("f1", "__macro__")] == pytest.approx(macro[2])


def test_regression_and_log_loss_equal_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(10, 3, 200)
    y_hat = y + rng.normal(0, 1, 200)
    got = metrics.regression(y, y_hat)
    assert got[("mae", "")] == pytest.approx(sk.mean_absolute_error(y, y_hat))
    assert got[("rmse", "")] == pytest.approx(np.sqrt(sk.mean_squared_error(y, y_hat)))
    assert got[("mape", "")] == pytest.approx(sk.mean_absolute_percentage_error(y, y_hat))
    truth = rng.integers(0, 2, 300)
    probability = np.clip(truth * 0.6 + rng.uniform(0, 0.4, 300), 0, 1)
    assert metrics.log_loss(truth, probability) == pytest.approx(sk.log_loss(truth, probability))


def test_evaluate_picks_metrics_by_the_values() -> None:
    # Probabilities against 0/1 truth (spelled as labels, as OTLP ints and bools arrive).
    got = metrics.evaluate(["1", "0", "true", "false"], [0.9, 0.2, 0.4, 0.6])
    assert got[("log_loss", "")] == pytest.approx(sk.log_loss([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6]))
    assert got[("accuracy", "")] == 0.5
    # Floats both sides: regression.
    assert set(metrics.evaluate([1.5, 2.0], [1.0, 2.5])) == {
        ("mae", ""),
        ("rmse", ""),
        ("mape", ""),
    }
    # Labels: classification.
    assert metrics.evaluate(["a", "b"], ["a", "a"])[("accuracy", "")] == 0.5
