"""The feature store: reference bins or defaults, the budget, merging by name, its families."""

from __future__ import annotations

import numpy as np
import pandas as pd

from otelml import profile, semconv
from otelml.gateway.state.budget import SeriesBudget
from otelml.gateway.state.distributions import (
    CategoricalDistribution,
    NumericDistribution,
    default_edges,
)
from otelml.gateway.state.keys import ModelKey, ModelProfile, SeriesKey
from otelml.gateway.state.store import FeatureStore

X = SeriesKey("feature", "x")
M = ModelKey("m", "1")


def _profiled_store(budget: int = 10_000) -> tuple[FeatureStore, profile.Profile]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    built = profile.build(frame, model="m", version="1", bins=4)
    return FeatureStore(SeriesBudget(budget), [ModelProfile("m", "1", built)]), built


def test_a_profiled_model_starts_with_its_reference_series_on_their_bins() -> None:
    store, built = _profiled_store()
    series = store.model(M)
    assert sorted(s.name for s in series) == ["c", "x"]  # expected before any value arrives
    x = series[X]
    assert isinstance(x, NumericDistribution)
    reference = built.features["x"]
    assert isinstance(reference, profile.NumericProfile)
    assert x.edges.tolist() == list(reference.edges)
    c = series[SeriesKey("feature", "c")]
    categories = built.features["c"]
    assert isinstance(categories, profile.CategoricalProfile)
    assert isinstance(c, CategoricalDistribution) and c.categories == list(categories.categories)
    # Another version of the same name has no profile: default buckets, created on demand.
    other = store.distribution(ModelKey("m", "2"), X, "numeric")
    assert isinstance(other, NumericDistribution)
    assert other.edges.tolist() == list(default_edges())


def test_series_past_the_budget_are_refused_for_good_and_nothing_is_spent() -> None:
    store = FeatureStore(SeriesBudget(60))
    first = store.distribution(M, X, "numeric")
    # 52 buckets (51 default edges), missing, 4 invalid reasons; no _sum/_count (negative bins).
    assert first is not None and store.budget.used == first.series_count() == 57
    assert store.distribution(M, SeriesKey("feature", "y"), "numeric") is None
    assert store.budget.used == 57
    assert store.distribution(M, SeriesKey("feature", "y"), "numeric") is None  # remembered
    assert [s for _, s, _ in store.items()] == [X]


def test_merge_adds_by_name_and_counts_what_does_not_fit() -> None:
    mine, theirs = FeatureStore(SeriesBudget(60)), FeatureStore(SeriesBudget(1000))
    for store in (mine, theirs):
        dist = store.distribution(M, X, "numeric")
        assert isinstance(dist, NumericDistribution)
        dist.counts[3] += 2
        dist.missing += 1
    extra = theirs.distribution(M, SeriesKey("feature", "y"), "numeric")
    assert extra is not None
    extra.counts[0] += 5
    mine.merge(theirs)
    merged = mine.existing(M, X)
    assert merged is not None and merged.counts[3] == 4 and merged.missing == 2
    assert mine.existing(M, SeriesKey("feature", "y")) is None
    assert dict(mine.budget.overflow) == {semconv.FEATURE_VALUE: 5}


def test_collect_orders_whole_models_then_slices_then_references() -> None:
    store, _ = _profiled_store()
    store.model(M)
    store.distribution(ModelKey("m", "1", ("c", "a")), X, "numeric")
    names = [family.name for family in store.collect()]
    whole = names.index(semconv.FEATURE_VALUE)
    sliced = names.index(semconv.segment_name(semconv.FEATURE_VALUE))
    reference = names.index(semconv.REFERENCE_FEATURE_VALUE)
    assert whole < sliced < reference
    (histogram,) = next(f for f in store.collect() if f.name == semconv.FEATURE_VALUE).histograms
    assert histogram.labels == (("model", "m"), ("model_version", "1"), ("feature", "x"))
