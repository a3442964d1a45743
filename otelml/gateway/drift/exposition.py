"""How drift verdicts describe themselves: window counts, scores, detections, events.

The whole models' window counts first (gauge histograms over the reference bins, for
cluster-wide scores in PromQL: `sum by (le)`), then per role the scores by method, the
verdict (absent while the window is too small), the too-few-observations flag, the window's
observations and the events counter whose exemplar is a trace from the bin that moved most;
the per-slice verdicts follow in their own `otelml_segment_*` families.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from otelml import semconv
from otelml.gateway.drift.verdict import Verdict
from otelml.gateway.state.families import Exemplar, Family, Histogram, Labels, Sample
from otelml.gateway.state.keys import ModelKey, SeriesKey, series_labels
from otelml.profile import CategoricalProfile, FeatureProfile, NumericProfile

SeriesVerdict = tuple[ModelKey, SeriesKey, Verdict]
ReferenceOf = Callable[[ModelKey, SeriesKey], FeatureProfile | None]

_NAMES = (
    (
        "feature",
        semconv.DRIFT_SCORE,
        semconv.DRIFT_DETECTED,
        semconv.DRIFT_EVENTS,
        semconv.DRIFT_WINDOW_OBSERVATIONS,
        semconv.DRIFT_INSUFFICIENT_DATA,
    ),
    (
        "prediction",
        semconv.PREDICTION_DRIFT_SCORE,
        semconv.PREDICTION_DRIFT_DETECTED,
        semconv.PREDICTION_DRIFT_EVENTS,
        semconv.PREDICTION_DRIFT_WINDOW_OBSERVATIONS,
        semconv.PREDICTION_DRIFT_INSUFFICIENT_DATA,
    ),
)


def drift_families(verdicts: list[SeriesVerdict], reference_of: ReferenceOf) -> Iterator[Family]:
    whole = [v for v in verdicts if v[0].segment is None]
    yield from _window_families(whole, reference_of)
    yield from _verdict_families(whole, str)
    yield from _verdict_families(
        [v for v in verdicts if v[0].segment is not None], semconv.segment_name
    )


def _window_families(verdicts: list[SeriesVerdict], reference_of: ReferenceOf) -> Iterator[Family]:
    numeric: list[tuple[Labels, NumericProfile, Verdict]] = []
    categorical: list[tuple[Labels, CategoricalProfile, Verdict]] = []
    for model, series, verdict in verdicts:
        if series.role != "feature" or not len(verdict.window):
            continue
        feature = reference_of(model, series)
        labels = series_labels(model, series)
        if isinstance(feature, NumericProfile):
            numeric.append((labels, feature, verdict))
        elif isinstance(feature, CategoricalProfile):
            categorical.append((labels, feature, verdict))
    if numeric:
        yield Family(
            semconv.DRIFT_WINDOW_VALUE,
            "gaugehistogram",
            "Counts of the current drift window per bucket.",
            histograms=[
                Histogram(labels, feature.edges, np.asarray(verdict.window))
                for labels, feature, verdict in numeric
            ],
        )
    if categorical:
        yield Family(
            semconv.DRIFT_WINDOW_CATEGORY,
            "gauge",
            "Counts of the current drift window per category.",
            [
                Sample(labels, count, ((semconv.LABEL_CATEGORY, category),))
                for labels, cat, verdict in categorical
                for category, count in zip(
                    [*cat.categories, semconv.OTHER_CATEGORY],
                    verdict.window.tolist(),
                    strict=True,
                )
            ],
        )


def _verdict_families(
    verdicts: list[SeriesVerdict], rename: Callable[[str], str]
) -> Iterator[Family]:
    for role, score, detected, events, observations, insufficient in _NAMES:
        mine = [(series_labels(m, s), v) for m, s, v in verdicts if s.role == role]
        if not mine:
            continue
        yield Family(
            rename(score),
            "gauge",
            f"Drift of each {role} over the window, by method.",
            [
                Sample(labels, float(value), ((semconv.LABEL_METHOD, method),))
                for labels, verdict in mine
                for method, value in sorted(verdict.scores.items())
            ],
        )
        yield Family(
            rename(detected),
            "gauge",
            "1 when the window drifted, 0 when not (absent: too few observations).",
            [
                Sample(labels, int(verdict.detected))
                for labels, verdict in mine
                if verdict.detected is not None
            ],
        )
        yield Family(
            rename(insufficient),
            "gauge",
            "1 while the window has fewer observations than drift.min_samples.",
            [Sample(labels, int(verdict.detected is None)) for labels, verdict in mine],
        )
        yield Family(
            rename(observations),
            "gauge",
            "Observations in the current drift window.",
            [Sample(labels, verdict.observations) for labels, verdict in mine],
        )
        yield Family(
            f"{rename(events)}_total",
            "counter",
            "Windows that crossed into drift; exemplar: a trace from the bin that moved most.",
            [
                Sample(
                    labels,
                    verdict.events,
                    ((semconv.LABEL_METHOD, verdict.method),),
                    _exemplar(verdict),
                )
                for labels, verdict in mine
            ],
        )


def _exemplar(verdict: Verdict) -> Exemplar | None:
    found = verdict.exemplar
    if found is None:
        return None
    return Exemplar(found.trace_id, found.span_id, found.value, found.time_s)
