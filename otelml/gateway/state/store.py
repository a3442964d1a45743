"""The feature store: one distribution per (model, version, role, name), created on first sight.

A distribution's bucket scheme comes from the model's reference profile when one is
configured (so live counts line up with the training counts bin for bin), else from the
defaults in `distributions`. Feature *values* never become labels: only names do, and every
new name spends series from the budget.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

import numpy as np

from otelml import semconv
from otelml.gateway.state.attribution import SliceStore
from otelml.gateway.state.budget import SeriesBudget, remember_refused
from otelml.gateway.state.distributions import (
    CategoricalDistribution,
    Distribution,
    NumericDistribution,
    default_edges,
)
from otelml.gateway.state.families import Family
from otelml.gateway.state.feature_families import distribution_families, reference_families
from otelml.gateway.state.keys import ModelKey, ModelProfile, SeriesKey
from otelml.profile import CategoricalProfile, FeatureProfile, NumericProfile, Profile

SampleKind = Literal["numeric", "categorical"]


class FeatureStore:
    def __init__(
        self,
        budget: SeriesBudget,
        models: list[ModelProfile] | None = None,
        max_categories: int = 20,
    ) -> None:
        self.budget = budget
        self.models = models or []
        self.max_categories = max_categories
        self._by_model: dict[ModelKey, dict[SeriesKey, Distribution]] = {}
        self._refused: set[tuple[ModelKey, SeriesKey]] = set()
        # One array shared by every default-bucket series: the exposition formats it once.
        self._default_edges = np.asarray(default_edges(), dtype=np.float64)
        self._segments: dict[tuple[ModelKey, str], set[str]] = {}
        #: The same observations sliced by trace attributes, for drift attribution.
        self.slices = SliceStore(self.models)
        #: Incremented whenever a distribution is created: lets readers skip rescans.
        self.generation = 0

    def model(self, key: ModelKey) -> dict[SeriesKey, Distribution]:
        """The distributions of one model version (created empty on first sight)."""
        known = self._by_model.get(key)
        if known is None:
            known = self._by_model[key] = {}
            profile = self._profile_of(key)
            if profile is not None:
                # Reference features are expected from the start: absence counts as missing.
                for role, features in (
                    ("feature", profile.features),
                    ("prediction", profile.predictions),
                ):
                    for name, feature in features.items():
                        self._create(key, SeriesKey(role, name), None, feature)  # type: ignore[arg-type]
            if not known:
                # A model with no series is not kept: a stream of fresh model names past the
                # series budget must not grow this map.
                del self._by_model[key]
        return known

    def knows(self, key: ModelKey) -> bool:
        """Whether the model has any series (a model refused by the budget has none)."""
        return key in self._by_model

    def existing(self, key: ModelKey, series: SeriesKey) -> Distribution | None:
        """The distribution if it exists already: the per-request fast path."""
        known = self._by_model.get(key)
        return known.get(series) if known is not None else None

    def distribution(
        self, key: ModelKey, series: SeriesKey, sample_kind: SampleKind
    ) -> Distribution | None:
        """The distribution for a series, or None when it does not fit the series budget."""
        known = self.model(key)
        found = known.get(series)
        if found is not None or (key, series) in self._refused:
            return found
        return self._create(key, series, sample_kind, None)

    def _create(
        self,
        key: ModelKey,
        series: SeriesKey,
        sample_kind: SampleKind | None,
        feature: FeatureProfile | None,
    ) -> Distribution | None:
        if feature is None:
            feature = self._reference_of(key, series)
        distribution: Distribution
        if isinstance(feature, NumericProfile):
            distribution = NumericDistribution(feature.edges, (feature.min, feature.max))
        elif isinstance(feature, CategoricalProfile):
            vocabulary = frozenset(feature.vocabulary) if feature.vocabulary is not None else None
            distribution = CategoricalDistribution(feature.categories, vocabulary=vocabulary)
        elif sample_kind == "categorical":
            distribution = CategoricalDistribution(capacity=self.max_categories, learn=True)
        else:
            distribution = NumericDistribution(self._default_edges)
        if not self.budget.reserve(distribution.series_count()):
            remember_refused(self._refused, (key, series))
            return None
        self._by_model.setdefault(key, {})[series] = distribution
        self.generation += 1
        return distribution

    def _profile_of(self, key: ModelKey) -> Profile | None:
        model = self.model_profile(key)
        return model.profile if model is not None else None

    def model_profile(self, key: ModelKey) -> ModelProfile | None:
        for model in self.models:
            if model.matches(key):
                return model
        return None

    def segment_value(self, key: ModelKey, feature: str, value: str) -> str:
        """The segment label of a value: a reference top-K category, a learned one up to
        `max_categories`, or `__other__` — segments can never explode the series count."""
        profile = self._profile_of(key)
        reference = profile.features.get(feature) if profile is not None else None
        if isinstance(reference, CategoricalProfile):
            return value if value in reference.categories else semconv.OTHER_CATEGORY
        learned = self._segments.get((key.whole, feature))
        if learned is None:
            if len(self._segments) >= self.budget.max_series:
                return semconv.OTHER_CATEGORY  # bounded under any stream of names
            learned = self._segments[(key.whole, feature)] = set()
        if value in learned:
            return value
        if len(learned) < self.max_categories:
            learned.add(value)
            return value
        return semconv.OTHER_CATEGORY

    def _reference_of(self, key: ModelKey, series: SeriesKey) -> FeatureProfile | None:
        profile = self._profile_of(key)
        if profile is None:
            return None
        table: Mapping[str, FeatureProfile] = (
            profile.features if series.role == "feature" else profile.predictions
        )
        return table.get(series.name)

    def merge(self, other: FeatureStore) -> None:
        """Add another store's distributions (another worker's) into this one, by name."""
        for key, series, theirs in other.items():
            mine = self.existing(key, series)
            if mine is None:
                self.model(key)
                mine = self.existing(key, series)
            if mine is None:
                mine = theirs.zero()
                if not self.budget.reserve(mine.series_count()):
                    kind: SampleKind = "numeric" if theirs.kind == "numeric" else "categorical"
                    observed = int(theirs.counts.sum()) + theirs.missing + int(theirs.invalid.sum())
                    self.budget.count_overflow(overflow_metric(series, kind), observed)
                    continue
                self._by_model.setdefault(key, {})[series] = mine
                self.generation += 1
            if mine.kind != theirs.kind:
                continue  # two workers guessed differently for an unprofiled series: keep ours
            mine.merge(theirs)  # type: ignore[arg-type]
        self.slices.merge(other.slices)

    def collect(self) -> Iterator[Family]:
        """The whole models' distributions, their slices', then the reference profiles."""
        entries = list(self.items())
        yield from distribution_families(e for e in entries if e[0].segment is None)
        yield from distribution_families(
            (e for e in entries if e[0].segment is not None), semconv.segment_name
        )
        yield from reference_families(self.models)

    def items(self) -> Iterator[tuple[ModelKey, SeriesKey, Distribution]]:
        for key, known in self._by_model.items():
            for series, distribution in known.items():
                yield key, series, distribution


def overflow_metric(series: SeriesKey, sample_kind: SampleKind) -> str:
    """The metric an over-budget series would have been exposed as (the overflow label)."""
    if series.role == "feature":
        return semconv.FEATURE_VALUE if sample_kind == "numeric" else semconv.FEATURE_CATEGORY
    return semconv.PREDICTION_VALUE if sample_kind == "numeric" else semconv.PREDICTION_CLASS
