"""How the feature store describes itself: live distributions, then the reference profiles.

Per role (features, then prediction outputs): a histogram family of the numeric series, a
counter of the categorical ones by value, missing and invalid counters of both; the per-slice
series of segmented models in their own `otelml_segment_*` families (so a `sum` over a family
never adds a slice to the whole it is part of). Then the reference profiles' own counts on the
live series' label sets, so PromQL can compare them bucket by bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from otelml import semconv
from otelml.gateway.state.distributions import (
    CategoricalDistribution,
    Distribution,
    NumericDistribution,
)
from otelml.gateway.state.families import (
    Family,
    Histogram,
    Labels,
    Sample,
    exemplars_of,
    go_float,
)
from otelml.gateway.state.keys import ModelKey, ModelProfile, SeriesKey, series_labels
from otelml.profile import CategoricalProfile, NumericProfile

Entry = tuple[ModelKey, SeriesKey, Distribution]
#: The `reason` label of each invalid counter, built once (the exposition formats each once).
_REASONS: tuple[Labels, ...] = tuple(
    ((semconv.LABEL_REASON, reason),) for reason in semconv.INVALID_REASONS
)

_ROLES = (
    (
        "feature",
        semconv.FEATURE_VALUE,
        semconv.FEATURE_CATEGORY,
        semconv.FEATURE_MISSING,
        semconv.FEATURE_INVALID,
        semconv.LABEL_CATEGORY,
        "feature",
    ),
    (
        "prediction",
        semconv.PREDICTION_VALUE,
        semconv.PREDICTION_CLASS,
        semconv.PREDICTION_MISSING,
        semconv.PREDICTION_INVALID,
        semconv.LABEL_CLASS,
        "prediction output",
    ),
)


def distribution_families(
    entries: Iterable[Entry], rename: Callable[[str], str] = str
) -> Iterator[Family]:
    """The families of live distributions; `rename` maps a metric to its family name."""
    entries = list(entries)
    for role, value_metric, class_metric, missing, invalid, class_label, noun in _ROLES:
        mine = [(m, s, d, series_labels(m, s)) for m, s, d in entries if s.role == role]
        numeric = [(d, labels) for _, _, d, labels in mine if isinstance(d, NumericDistribution)]
        categorical = [
            (d, labels) for _, _, d, labels in mine if isinstance(d, CategoricalDistribution)
        ]
        if numeric:
            yield Family(
                rename(value_metric),
                "histogram",
                f"Values of each numeric {noun}.",
                histograms=[
                    Histogram(
                        labels,
                        hist.edges,
                        hist.counts,
                        hist.exemplars,
                        None if hist.has_negative_buckets else hist.sum,
                    )
                    for hist, labels in numeric
                ],
            )
        if categorical:
            yield Family(
                f"{rename(class_metric)}_total",
                "counter",
                f"Observations of each categorical {noun} by value.",
                [
                    s
                    for cat, labels in categorical
                    for s in _category_samples(cat, labels, class_label)
                ],
            )
        if mine:
            yield Family(
                f"{rename(missing)}_total",
                "counter",
                f"Rows where the {noun} was absent, null or NaN.",
                [Sample(labels, d.missing) for _, _, d, labels in mine],
            )
            yield Family(
                f"{rename(invalid)}_total",
                "counter",
                f"Invalid {noun} values by reason.",
                [
                    Sample(labels, count, reason)
                    for _, _, d, labels in mine
                    for reason, count in zip(_REASONS, d.invalid.tolist(), strict=True)
                ],
            )


def _category_samples(
    cat: CategoricalDistribution, labels: Labels, class_label: str
) -> Iterator[Sample]:
    slots = [*range(len(cat.categories)), cat.other_slot]
    names = [*cat.categories, semconv.OTHER_CATEGORY]
    exemplars = exemplars_of(cat.exemplars, len(cat.counts))
    counts = cat.counts.tolist()
    for slot, category in zip(slots, names, strict=True):
        if slot == cat.other_slot and counts[slot] == 0:
            continue  # `__other__` appears once something falls into it
        yield Sample(labels, counts[slot], ((class_label, category),), exemplars[slot])


def reference_families(models: Iterable[ModelProfile]) -> Iterator[Family]:
    """The reference profiles' own counts, on the live series' label sets, for PromQL."""
    numeric: dict[str, list[tuple[Labels, NumericProfile]]] = {"feature": [], "prediction": []}
    categorical: dict[str, list[tuple[Labels, CategoricalProfile]]] = {
        "feature": [],
        "prediction": [],
    }
    for model in models:
        profile = model.profile
        if profile is None:
            continue
        version = model.version or profile.version or ""
        for role, table in (("feature", profile.features), ("prediction", profile.predictions)):
            for name, feature in table.items():
                labels = series_labels(ModelKey(model.name, version), SeriesKey(role, name))  # type: ignore[arg-type]
                if isinstance(feature, NumericProfile):
                    numeric[role].append((labels, feature))
                else:
                    categorical[role].append((labels, feature))
    for role, value_metric, class_metric, class_label in (
        (
            "feature",
            semconv.REFERENCE_FEATURE_VALUE,
            semconv.REFERENCE_FEATURE_CATEGORY,
            semconv.LABEL_CATEGORY,
        ),
        (
            "prediction",
            semconv.REFERENCE_PREDICTION_VALUE,
            semconv.REFERENCE_PREDICTION_CLASS,
            semconv.LABEL_CLASS,
        ),
    ):
        if numeric[role]:
            # A gauge histogram: constant counts that PromQL compares with the live buckets.
            yield Family(
                value_metric,
                "gaugehistogram",
                f"Reference (training) counts per {role} bucket.",
                histograms=[
                    Histogram(labels, feature.edges, np.asarray(feature.counts))
                    for labels, feature in numeric[role]
                ],
            )
        if role == "feature" and numeric[role]:
            yield Family(
                semconv.REFERENCE_FEATURE_BIN_RATIO,
                "gauge",
                "Reference share of each bucket (not cumulative).",
                [s for labels, feature in numeric[role] for s in _bin_ratios(labels, feature)],
            )
        if categorical[role]:
            yield Family(
                class_metric,
                "gauge",
                f"Reference (training) counts per {role} value.",
                [
                    Sample(labels, count, ((class_label, name),))
                    for labels, cat in categorical[role]
                    for name, count in zip(
                        [*cat.categories, semconv.OTHER_CATEGORY], cat.counts, strict=True
                    )
                ],
            )


def _bin_ratios(labels: Labels, feature: NumericProfile) -> Iterator[Sample]:
    les = [go_float(e) for e in feature.edges] + ["+Inf"]
    total = sum(feature.counts) or 1
    for i, (le, count) in enumerate(zip(les, feature.counts, strict=True)):
        extra: Labels = (("le", le), (semconv.LABEL_LE_PREV, les[i - 1])) if i else (("le", le),)
        yield Sample(labels, count / total, extra)
