"""What the state says about itself: metric families, format-neutral (the collect() vocabulary).

Every stateful component has a `collect()` that yields `Family` objects describing its
current values, in a fixed order — client_python's custom-collector pattern over our own numpy
structures. The Prometheus exposition (`exporters/prometheus.py`) is one reader of them; the
UI's JSON API is another, so both read the same state through the same hooks and neither keeps
a copy. Histograms stay columnar (bucket counts and exemplar slots are numpy arrays) so the
exposition formats a 10k-series scrape in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from prometheus_client.utils import floatToGoString as _go_float

from otelml.gateway.state.exemplars import Exemplars

#: (name, value) label pairs, in exposition order.
Labels = tuple[tuple[str, str], ...]

Kind = Literal["counter", "gauge", "histogram", "gaugehistogram"]


class Exemplar(NamedTuple):
    """A trace an exposed value points at."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    value: float
    time_s: float


class Sample(NamedTuple):
    """One counter or gauge value.

    `labels` are the series' labels (shared by its families), `extra` the sample's own after
    them (a reason, a category, a method); an exposition joins them.
    """

    labels: Labels
    value: float
    extra: Labels = ()
    exemplar: Exemplar | None = None


class Histogram(NamedTuple):
    """One histogram series: per-bucket (not cumulative) counts over finite upper bounds.

    `counts` has one more entry than `bounds` (the +Inf bucket). `sum` None means the series
    exposes no `_sum` and no `_count` (a histogram with buckets below zero: see the
    exposition); `exemplars`, when given, has one slot per bucket.
    """

    labels: Labels
    bounds: Sequence[float] | npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64] | npt.NDArray[np.float64]
    exemplars: Exemplars | None = None
    sum: float | None = None


@dataclass
class Family:
    """A metric family: its sample name (counters end in `_total`), kind, help and values."""

    name: str
    kind: Kind
    help: str
    samples: list[Sample] = field(default_factory=list)
    histograms: list[Histogram] = field(default_factory=list)


def go_float(value: float) -> str:
    """A number as Prometheus (Go) spells it: `le` labels and values match other clients'."""
    return str(_go_float(value))  # type: ignore[no-untyped-call]


#: A component's hook: its families, in the order they are exposed.
Collect = Callable[[], Iterator[Family]]


def exemplars_of(slots: Exemplars, size: int) -> list[Exemplar | None]:
    """The first `size` exemplar slots as `Exemplar`s (None where a slot is empty)."""
    times = slots.time_s[:size]
    present = times > 0
    if not present.any():
        return [None] * size
    trace_hex = slots.trace_id[:size].tobytes().hex()
    span_hex = slots.span_id[:size].tobytes().hex()
    values = slots.value[:size].tolist()
    return [
        Exemplar(trace_hex[32 * i : 32 * i + 32], span_hex[16 * i : 16 * i + 16], value, when)
        if has
        else None
        for i, (has, value, when) in enumerate(
            zip(present.tolist(), values, times.tolist(), strict=True)
        )
    ]
