"""Prometheus exposition of metric families: text 0.0.4, or OpenMetrics 1.0 with exemplars.

The only place either format is written. It knows no state type: every component describes
itself as `Family` objects (its `collect()`), and this formats them — bucket lines straight
from the numpy counts with pre-computed `le` strings, ~10× faster than building
prometheus_client sample objects for the same series. Rules it keeps:
- a histogram with a bucket below zero exposes neither `_sum` (it would not be a counter)
  nor `_count` (OpenMetrics then forbids it); its `+Inf` bucket carries the count — the
  collector says so by leaving `Histogram.sum` None;
- exemplars (`trace_id`, `span_id`) only on counters and buckets, only in OpenMetrics;
- a counter's family name drops `_total` in OpenMetrics only; a gauge histogram is a plain
  histogram in the text format (which has no such type).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, Final

import numpy as np

from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.families import (
    Exemplar,
    Family,
    Histogram,
    Labels,
    Sample,
    go_float,
)

TEXT_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def wants_openmetrics(accept: str | None) -> bool:
    """Content negotiation as Prometheus does it: OpenMetrics only when asked for."""
    return bool(accept) and "application/openmetrics-text" in accept  # type: ignore[operator]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _exemplar(exemplar: Exemplar) -> str:
    return (
        f' # {{trace_id="{exemplar.trace_id}",span_id="{exemplar.span_id}"}} '
        f"{exemplar.value!r} {exemplar.time_s:.3f}"
    )


class _Formatted:
    """Strings formatted once per scrape: by identity first (the same tuple or array object
    reused across a series' families costs one dict lookup), then by value."""

    def __init__(self, format_: Callable[[Any], Any], key: Callable[[Any], Hashable]) -> None:
        self._format = format_
        self._key = key
        self._by_id: dict[int, tuple[object, Any]] = {}
        self._by_value: dict[Hashable, Any] = {}

    def __call__(self, item: Any) -> Any:
        hit = self._by_id.get(id(item))
        if hit is not None and hit[0] is item:
            return hit[1]
        key = self._key(item)
        text = self._by_value.get(key)
        if text is None:
            text = self._by_value[key] = self._format(item)
        self._by_id[id(item)] = (item, text)  # holding `item` keeps its id from being reused
        return text


def _label_text(labels: Labels) -> str:
    return ",".join(f'{n}="{escape(v)}"' for n, v in labels)


def _le_strings(bounds: Any) -> list[str]:
    return [go_float(b) for b in bounds] + ["+Inf"]


def _bounds_key(bounds: Any) -> Hashable:
    return tuple(bounds.tolist()) if isinstance(bounds, np.ndarray) else tuple(bounds)


class _Writer:
    def __init__(self, openmetrics: bool) -> None:
        self.openmetrics = openmetrics
        self.lines: list[str] = []
        #: `name="value",…` of a label set.
        self.labels: Callable[[Labels], str] = _Formatted(_label_text, tuple)
        #: The `le` values of a bucket scheme (series of one feature share theirs).
        self.le: Callable[[Any], list[str]] = _Formatted(_le_strings, _bounds_key)

    def family(self, family: Family) -> None:
        kind = family.kind
        name = family.name
        if self.openmetrics and kind == "counter":
            name = name.removesuffix("_total")
        if kind == "gaugehistogram" and not self.openmetrics:
            kind = "histogram"
        self.lines.append(f"# HELP {name} {family.help}\n# TYPE {name} {kind}\n")
        for histogram in family.histograms:
            self.histogram(family.name, histogram)
        if family.samples:
            self.samples(family.name, family.samples)

    def exemplar_suffixes(self, exemplars: Exemplars | None, slots: int) -> list[str]:
        """` # {trace_id=…,span_id=…} value timestamp` per slot, or '' where there is none."""
        if not self.openmetrics or exemplars is None:
            return [""] * slots
        times = exemplars.time_s[:slots]
        present = times > 0
        if not present.any():
            return [""] * slots
        trace_hex = exemplars.trace_id[:slots].tobytes().hex()
        span_hex = exemplars.span_id[:slots].tobytes().hex()
        values = exemplars.value[:slots].tolist()
        out = []
        for i, (has, value, when) in enumerate(
            zip(present.tolist(), values, times.tolist(), strict=True)
        ):
            if has:
                out.append(
                    f' # {{trace_id="{trace_hex[32 * i : 32 * i + 32]}",'
                    f'span_id="{span_hex[16 * i : 16 * i + 16]}"}} {value!r} {when:.3f}'
                )
            else:
                out.append("")
        return out

    def histogram(self, name: str, histogram: Histogram) -> None:
        labels = self.labels(histogram.labels)
        cumulative = np.cumsum(histogram.counts).tolist()
        suffixes = self.exemplar_suffixes(histogram.exemplars, len(histogram.counts))
        prefix = f'{name}_bucket{{{labels}{"," if labels else ""}le="'
        self.lines.extend(
            f'{prefix}{bound}"}} {count}{suffix}\n'
            for bound, count, suffix in zip(
                self.le(histogram.bounds), cumulative, suffixes, strict=True
            )
        )
        if histogram.sum is not None:
            self.lines.append(f"{name}_sum{{{labels}}} {go_float(histogram.sum)}\n")
            self.lines.append(f"{name}_count{{{labels}}} {cumulative[-1]}\n")

    def samples(self, name: str, samples: list[Sample]) -> None:
        """One line per sample. The hot loop of a scrape after the buckets: locals only."""
        labels_of = self.labels
        append = self.lines.append
        exemplars = self.openmetrics
        for labels, value, extra, exemplar in samples:
            text = labels_of(labels)
            if extra:  # few distinct ones (reasons, methods): formatted once each too
                text = f"{text},{labels_of(extra)}" if text else labels_of(extra)
            # Counts stay integers ("12"), the rest as Go spells floats.
            number = (
                str(value)
                if type(value) is int or isinstance(value, np.integer)
                else go_float(value)
            )
            if exemplars and exemplar is not None:
                number += _exemplar(exemplar)
            append(f"{name}{{{text}}} {number}\n")

    def text(self) -> str:
        if self.openmetrics:
            self.lines.append("# EOF\n")
        return "".join(self.lines)


def render(families: Iterable[Family], openmetrics: bool) -> str:
    """The whole exposition of `families` (in their order) as one string."""
    writer = _Writer(openmetrics)
    for family in families:
        writer.family(family)
    return writer.text()
