"""The series budget: a hard cap on exposed series, with counted overflow instead of loss.

Prometheus fails a whole scrape past its `sample_limit`, so the gateway refuses new label
sets beyond `limits.max_series`; their observations are counted in `otelml_series_overflow_total`
(by metric) rather than dropped silently or folded into a series they do not belong to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from otelml import semconv
from otelml.gateway.state.families import Family, Sample


class SeriesBudget:
    def __init__(self, max_series: int) -> None:
        self.max_series = max_series
        self.used = 0
        self.overflow: Counter[str] = Counter()

    def reserve(self, series: int) -> bool:
        """Take `series` from the budget if they all fit."""
        if self.used + series > self.max_series:
            return False
        self.used += series
        return True

    def count_overflow(self, metric: str, observations: int) -> None:
        self.overflow[metric] += observations

    def merge(self, other: SeriesBudget) -> None:
        """Another worker's overflow; the series used stay this budget's own."""
        self.overflow.update(other.overflow)

    def collect(self) -> Iterator[Family]:
        yield Family(
            f"{semconv.SERIES_OVERFLOW}_total",
            "counter",
            "Observations not given their own series because limits.max_series was reached.",
            [Sample((("metric", m),), v) for m, v in sorted(self.overflow.items())],
        )
