"""Span metrics state: one latency histogram (whose count is the call count) per label set.

What the spanmetrics connector counts into: series are created within the series budget,
merge across workers by label set, and keep one exemplar per latency bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from otelml import semconv
from otelml.gateway.state.budget import SeriesBudget, remember_refused
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.families import Family, Histogram, Sample

_BUCKETS = np.asarray(semconv.SPANMETRICS_BUCKETS)
_BOUNDS = tuple(float(b) for b in semconv.SPANMETRICS_BUCKETS)


class SpanKey(NamedTuple):
    service: str
    span_name: str
    span_kind: str
    status_code: str


class SpanSeries:
    """One label set: a latency histogram (whose count is the call count) with exemplars."""

    __slots__ = ("counts", "exemplars", "filled", "sum")

    def __init__(self) -> None:
        self.filled = 0  # buckets with a count: a bucket's first span always gets its exemplar
        self.counts = np.zeros(len(_BUCKETS) + 1, dtype=np.int64)
        self.exemplars = Exemplars(len(self.counts))
        self.sum = 0.0

    @staticmethod
    def series_count() -> int:
        return len(_BUCKETS) + 1 + 2 + 1  # buckets, _sum, _count, calls_total

    def merge(self, other: SpanSeries) -> None:
        self.counts += other.counts
        self.filled = int(np.count_nonzero(self.counts))
        self.sum += other.sum
        self.exemplars.merge(other.exemplars)


class SpanMetrics:
    """Every label set's series, bounded by the series budget."""

    def __init__(self, budget: SeriesBudget) -> None:
        self.budget = budget
        self.series: dict[SpanKey, SpanSeries] = {}
        self._refused: set[SpanKey] = set()

    def series_for(self, key: SpanKey) -> SpanSeries | None:
        found = self.series.get(key)
        if found is not None or key in self._refused:
            return found
        if not self.budget.reserve(SpanSeries.series_count()):
            remember_refused(self._refused, key)
            return None
        found = self.series[key] = SpanSeries()
        return found

    def collect(self) -> Iterator[Family]:
        """Calls by label set, then the latency histograms (nothing before the first span)."""
        if not self.series:
            return
        series = [(tuple(zip(key._fields, key, strict=True)), s) for key, s in self.series.items()]
        yield Family(
            f"{semconv.SPANMETRICS_CALLS}_total",
            "counter",
            "Spans by service, name, kind and status.",
            [Sample(labels, int(s.counts.sum())) for labels, s in series],
        )
        yield Family(
            semconv.SPANMETRICS_LATENCY,
            "histogram",
            "Span duration in seconds.",
            histograms=[
                Histogram(labels, _BOUNDS, s.counts, s.exemplars, s.sum) for labels, s in series
            ],
        )

    def merge(self, other: SpanMetrics) -> None:
        """Add another worker's span metrics into these, by label set."""
        for key, theirs in other.series.items():
            mine = self.series_for(key)
            if mine is None:
                self.budget.count_overflow(semconv.SPANMETRICS_CALLS, int(theirs.counts.sum()))
            else:
                mine.merge(theirs)
