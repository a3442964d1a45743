"""Drift attribution over time: windows of the slice counts, ranked slices of drifting series.

Slice counts are cumulative like the distributions; the attributor keeps, per series, the
last `steps + 1` snapshots (as the drift tables do for the whole series) so a slice window is
the difference of two. Every step, for each series whose verdict says drift, it ranks the
(key, value) slices by the share of the drift they explain and keeps the `top` per key. The
exposed series (4 families per slice shown, at most keys × top per series) are reserved from
the series budget as they are first shown; slices that do not fit are cut and counted in
`otelml_series_overflow_total{metric="otelml_drift_attribution"}` (their window's observations).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.drift.attribution import attribute
from otelml.gateway.drift.verdict import Verdict
from otelml.gateway.state.attribution import SliceCounts, SliceValues
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.families import Exemplar, Family, Sample
from otelml.gateway.state.keys import ModelKey, SeriesKey, series_labels
from otelml.gateway.state.store import FeatureStore

#: Exposed families per slice: explained share, traffic share, slice score, observations.
FAMILIES_PER_SLICE = 4

SeriesId = tuple[ModelKey, SeriesKey]


@dataclass(frozen=True)
class SliceVerdict:
    """One ranked slice of a drifting series' window."""

    key: str
    value: str
    explained: float
    traffic_share: float
    slice_score: float
    observations: int  # cumulative, the exemplar counter's value
    window_observations: int
    exemplar: Exemplar | None


@dataclass
class Attributor:
    """The slice windows of every attributed series and the latest ranking of drifting ones."""

    rings: dict[SeriesId, deque[npt.NDArray[np.int64]]] = field(default_factory=dict)
    results: dict[SeriesId, list[SliceVerdict]] = field(default_factory=dict)
    _reserved: dict[SeriesId, int] = field(default_factory=dict)

    def step(
        self,
        rows: list[tuple[ModelKey, SeriesKey, npt.NDArray[np.float64]]],
        steps: int,
        store: FeatureStore,
        verdicts: dict[SeriesId, Verdict],
    ) -> None:
        """One step of a drift table: `rows` are its series with their reference counts."""
        for model, series, reference in rows:
            values = store.slices.model_values(model)
            counts = store.slices.get(model, series)
            if values is None or counts is None:
                continue
            current = counts.counts.copy()
            ring = self.rings.get((model, series))
            if ring is None:
                ring = self.rings[(model, series)] = deque(
                    [np.zeros_like(current)], maxlen=steps + 1
                )
            ring.append(current)
            verdict = verdicts.get((model, series))
            self.results.pop((model, series), None)
            if verdict is None or not verdict.detected or len(reference) > current.shape[2]:
                continue
            # Categories learned beyond the reference's (capacity slots) have no reference mass.
            reference = np.pad(reference, (0, current.shape[2] - len(reference)))
            window = current - ring[0]
            found = _ranked(values, counts, reference, window, current)
            self.results[(model, series)] = self._within_budget(model, series, found, store)

    def _within_budget(
        self, model: ModelKey, series: SeriesKey, found: list[SliceVerdict], store: FeatureStore
    ) -> list[SliceVerdict]:
        """Reserve series for the slices shown (once, growing with them); cut what won't fit."""
        held = self._reserved.get((model, series), 0)
        wanted = len(found) * FAMILIES_PER_SLICE
        if wanted > held:
            room = store.budget.max_series - store.budget.used
            grant = min(wanted - held, room - room % FAMILIES_PER_SLICE)
            if grant > 0 and store.budget.reserve(grant):
                held = self._reserved[(model, series)] = held + grant
        kept = found[: held // FAMILIES_PER_SLICE]
        refused = found[len(kept) :]
        if refused:
            store.budget.count_overflow(
                semconv.DRIFT_ATTRIBUTION, sum(s.window_observations for s in refused)
            )
        return kept

    def collect(self) -> Iterator[Family]:
        """The ranked slices of the drifting series (nothing while none drifts)."""
        if not any(self.results.values()):
            return
        entries = [
            (series_labels(model, series) + _slice_labels(found), found)
            for (model, series), slices in sorted(self.results.items())
            for found in slices
        ]
        yield Family(
            semconv.DRIFT_ATTRIBUTION,
            "gauge",
            "Share (0-1) of the window's drift (PSI) that goes away without this trace-attribute "
            "slice.",
            [Sample(labels, s.explained) for labels, s in entries],
        )
        yield Family(
            semconv.DRIFT_ATTRIBUTION_TRAFFIC_SHARE,
            "gauge",
            "The slice's share of the window's observations.",
            [Sample(labels, s.traffic_share) for labels, s in entries],
        )
        yield Family(
            semconv.DRIFT_ATTRIBUTION_SLICE_SCORE,
            "gauge",
            "PSI of the slice's window alone against the reference.",
            [Sample(labels, s.slice_score) for labels, s in entries if np.isfinite(s.slice_score)],
        )
        yield Family(
            f"{semconv.DRIFT_ATTRIBUTION_OBSERVATIONS}_total",
            "counter",
            "Observations of the slice; the exemplar is the slice's latest trace.",
            [Sample(labels, s.observations, exemplar=s.exemplar) for labels, s in entries],
        )


def _ranked(
    values: SliceValues,
    counts: SliceCounts,
    reference: npt.NDArray[np.float64],
    window: npt.NDArray[np.int64],
    current: npt.NDArray[np.int64],
) -> list[SliceVerdict]:
    """The `top` slices of each key that splits the window, best-explaining first."""
    ranked = attribute(reference, window)
    found: list[SliceVerdict] = []
    for k, key in enumerate(values.settings.keys):
        in_window = np.flatnonzero(window[k].sum(axis=1) > 0)
        if len(in_window) < 2:
            continue  # one value carries all the traffic: the key splits nothing
        order = np.lexsort(
            (-np.nan_to_num(ranked.slice_score[k, in_window]), -ranked.explained[k, in_window])
        )
        for slot in in_window[order][: values.settings.top].tolist():
            found.append(
                SliceVerdict(
                    key=key,
                    value=values.name(k, slot),
                    explained=float(ranked.explained[k, slot]),
                    traffic_share=float(ranked.traffic_share[k, slot]),
                    slice_score=float(ranked.slice_score[k, slot]),
                    observations=int(current[k, slot].sum()),
                    window_observations=int(window[k, slot].sum()),
                    exemplar=_exemplar(counts.exemplars, k * values.slots + slot),
                )
            )
    return found


def _slice_labels(found: SliceVerdict) -> tuple[tuple[str, str], ...]:
    return ((semconv.LABEL_KEY, found.key), (semconv.LABEL_VALUE, found.value))


def _exemplar(slots: Exemplars, index: int) -> Exemplar | None:
    if slots.time_s[index] <= 0:
        return None
    return Exemplar(
        slots.trace_id[index].tobytes().hex(),
        slots.span_id[index].tobytes().hex(),
        float(slots.value[index]),
        float(slots.time_s[index]),
    )
