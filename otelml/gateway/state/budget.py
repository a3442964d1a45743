"""The series budget: a hard cap on exposed series, with counted overflow instead of loss.

Prometheus fails a whole scrape past its `sample_limit`, so the gateway refuses new label
sets beyond `limits.max_series`; their observations are counted in `otelml_series_overflow_total`
(by metric) rather than dropped silently or folded into a series they do not belong to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator
from typing import TypeVar

from otelml import semconv
from otelml.gateway.state.families import Family, Sample

#: Refused keys remembered at most (a fast path only: a forgotten one is refused again by the
#: budget). Without a bound, a stream of fresh names would grow the set forever.
REMEMBERED_REFUSALS = 4096

K = TypeVar("K", bound=Hashable)


def remember_refused(refused: set[K], key: K) -> None:
    """Add `key` to a set of refused keys, emptied when full: memory stays bounded."""
    if len(refused) >= REMEMBERED_REFUSALS:
        refused.clear()
    refused.add(key)


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
