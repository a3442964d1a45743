"""The drift engine: every `step`, each profiled series' last `window` of counts vs its reference.

Distributions only ever count up (they are Prometheus counters); a window is the difference
of two snapshots of those cumulative counts, `steps` steps apart, kept in a ring. So a window is
as mergeable as the counts themselves: workers, replicas or steps add, and the engine can run
wherever the merged counts are (the gateway, or the parent of its workers).

All series of the models sharing a (window, step) form one table — rows = series, columns =
bins, zero-padded — and each step scores the whole table with a few vectorised calls per test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from otelml.gateway.drift import methods, scores
from otelml.gateway.drift.attributor import Attributor
from otelml.gateway.drift.exposition import drift_families
from otelml.gateway.drift.rules import DriftSettings, ModelDrift, Rule, RuleLike
from otelml.gateway.drift.verdict import DriftExemplar, Verdict
from otelml.gateway.performance.estimated import EstimatedPerformance
from otelml.gateway.state.families import Family
from otelml.gateway.state.keys import ModelKey, ModelProfile, SeriesKey
from otelml.gateway.state.store import FeatureStore
from otelml.profile import FeatureProfile, NumericProfile, Profile


@dataclass(frozen=True)
class _Row:
    model: ModelKey
    series: SeriesKey
    feature: FeatureProfile
    method: str
    threshold: float
    min_samples: int


def _rule(drift: DriftSettings, series: SeriesKey) -> RuleLike:
    table = drift.features if series.role == "feature" else drift.predictions
    return table.get(series.name, Rule(drift.method, drift.threshold))


class DriftTable:
    """The series of every model sharing one (window, step)."""

    def __init__(self, window_s: float, step_s: float) -> None:
        self.window_s = window_s
        self.step_s = step_s
        self.steps = max(1, round(window_s / step_s))
        self.rows: list[_Row] = []
        self.index: dict[tuple[ModelKey, SeriesKey], int] = {}
        self._reference_rows: list[npt.NDArray[np.float64]] = []
        self._point_rows: list[npt.NDArray[np.float64]] = []
        self.reference = np.zeros((0, 1))
        self.points = np.zeros((0, 1))
        self.std = np.zeros(0)
        # Snapshots of cumulative counts; snapshot 0 (all zeros) is the start of every series.
        self.ring = np.zeros((self.steps + 1, 0, 1), dtype=np.int64)
        self.taken = 1
        self.next_due = 0.0
        self._masks: dict[str, npt.NDArray[np.bool_]] | None = None
        self._thresholds = np.zeros(0)
        self._min_samples = np.zeros(0, dtype=np.int64)
        self._widths: list[int] = []

    def add(self, row: _Row) -> None:
        """Queue a new series; its history starts at zero (it was just discovered)."""
        feature = row.feature
        self._reference_rows.append(np.asarray(feature.counts, dtype=np.float64))
        if isinstance(feature, NumericProfile):
            self._point_rows.append(scores.bin_points(feature.edges, feature.bucket_means))
        else:
            self._point_rows.append(np.arange(len(feature.counts), dtype=np.float64))
        self.index[(row.model, row.series)] = len(self.rows)
        self.rows.append(row)

    def _materialise(self) -> None:
        """Rebuild the padded matrices after additions (once per discovery, not per series)."""
        n = len(self.rows)
        if self.reference.shape[0] == n:
            return
        width = max(len(r) for r in self._reference_rows)
        self.reference = np.zeros((n, width))
        self.points = np.zeros((n, width))
        for i, (reference, points) in enumerate(
            zip(self._reference_rows, self._point_rows, strict=True)
        ):
            self.reference[i, : len(reference)] = reference
            self.points[i, : len(points)] = points
            self.points[i, len(points) :] = points[-1]  # padding adds no distance
        self.std = np.array(
            [r.feature.std if isinstance(r.feature, NumericProfile) else np.nan for r in self.rows]
        )
        ring = np.zeros((self.steps + 1, n, width), dtype=np.int64)
        ring[:, : self.ring.shape[1], : self.ring.shape[2]] = self.ring
        self.ring = ring

    def step(
        self, store: FeatureStore, verdicts: dict[tuple[ModelKey, SeriesKey], Verdict]
    ) -> None:
        if not self.rows:
            return
        self._materialise()
        current = np.zeros(self.ring.shape[1:], dtype=np.int64)
        distributions = []
        for i, row in enumerate(self.rows):
            distribution = store.existing(row.model, row.series)
            distributions.append(distribution)
            if distribution is not None:
                current[i, : len(distribution.counts)] = distribution.counts
        slots = self.steps + 1
        self.ring[self.taken % slots] = current
        baseline = self.ring[max(0, self.taken - self.steps) % slots]
        self.taken += 1
        counts = current - baseline
        window = counts.astype(np.float64)
        observations = window.sum(axis=1)
        # Scores: one vectorised call per test over all rows that use it.
        results: dict[str, npt.NDArray[np.float64]] = {}
        decision = np.full(len(self.rows), np.nan)
        detected = np.zeros(len(self.rows), dtype=bool)
        labels_of: dict[str, list[str]] = {}
        for name, mask in self._method_masks().items():
            method = methods.METHODS[name]
            computed = methods.compute(
                name, self.reference[mask], window[mask], self.points[mask], self.std[mask]
            )
            labels_of[name] = list(computed)
            for label, values in computed.items():
                results.setdefault(label, np.full(len(self.rows), np.nan))[mask] = values
            decision[mask] = computed[method.label]
            detected[mask] = method.detected(computed[method.label], self._thresholds[mask])
        psi = scores.psi(self.reference, window)
        enough = (observations >= self._min_samples) & ~np.isnan(decision)
        # Then one cheap Python pass to publish the verdicts.
        columns = {label: values.tolist() for label, values in results.items()}
        psi_list, enough_list = psi.tolist(), enough.tolist()
        detected_list, observation_list = detected.tolist(), observations.astype(int).tolist()
        for i, row in enumerate(self.rows):
            key = (row.model, row.series)
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = verdicts[key] = Verdict(row.method, row.threshold, {}, 0, None)
            was_detected = verdict.detected
            if enough_list[i]:
                verdict.detected = detected_list[i]
                row_scores = {label: columns[label][i] for label in labels_of[row.method]}
                row_scores.setdefault("psi", psi_list[i])
                verdict.scores = row_scores
            else:
                verdict.detected = None
                verdict.scores = {}
            verdict.observations = observation_list[i]
            verdict.window = counts[i, : self._widths[i]]
            if verdict.detected and not was_detected:
                verdict.events += 1
                moved = scores.contributions(self.reference[i], window[i])[0]
                verdict.exemplar = _exemplar(distributions[i], moved) or verdict.exemplar

    def _method_masks(self) -> dict[str, npt.NDArray[np.bool_]]:
        if self._masks is None or len(self._thresholds) != len(self.rows):
            names = [row.method for row in self.rows]
            self._masks = {n: np.array([m == n for m in names]) for n in sorted(set(names))}
            self._thresholds = np.array([row.threshold for row in self.rows])
            self._min_samples = np.array([row.min_samples for row in self.rows])
            self._widths = [len(row.feature.counts) for row in self.rows]
        return self._masks


def _exemplar(distribution: object, contributions: npt.NDArray[np.float64]) -> DriftExemplar | None:
    """The newest exemplar of the bin with the largest PSI contribution (the bin that moved)."""
    exemplars = getattr(distribution, "exemplars", None)
    if exemplars is None:
        return None
    order = np.argsort(-contributions[: len(exemplars)], kind="stable")
    for slot in order.tolist():
        if exemplars.time_s[slot] > 0:
            return DriftExemplar(
                trace_id=exemplars.trace_id[slot].tobytes().hex(),
                span_id=exemplars.span_id[slot].tobytes().hex(),
                value=float(exemplars.value[slot]),
                time_s=float(exemplars.time_s[slot]),
            )
    return None


def _reference_rows(
    table: DriftTable,
) -> list[tuple[ModelKey, SeriesKey, npt.NDArray[np.float64]]]:
    """The table's whole-model series with their reference counts (slices have none)."""
    return [
        (row.model, row.series, table.reference[i, : len(row.feature.counts)])
        for i, row in enumerate(table.rows)
        if row.model.segment is None
    ]


@dataclass
class DriftEngine:
    """Owns the tables and the latest verdicts; `evaluate` is called by a timer (or a test)."""

    configs: Sequence[ModelDrift]
    profiles: list[ModelProfile]
    tables: dict[tuple[float, float], DriftTable] = field(default_factory=dict)
    verdicts: dict[tuple[ModelKey, SeriesKey], Verdict] = field(default_factory=dict)
    #: Called after a table stepped, e.g. to keep a history of the verdicts.
    on_step: list[
        Callable[[DriftTable, dict[tuple[ModelKey, SeriesKey], Verdict], FeatureStore], None]
    ] = field(default_factory=list)
    #: Which trace-attribute slices explain the drifting series.
    attributor: Attributor = field(default_factory=Attributor)
    #: Label-free performance of the calibrated probability outputs, from the same windows.
    estimated: EstimatedPerformance = field(default_factory=EstimatedPerformance)
    _seen_generation: int = -1
    _seen_store: FeatureStore | None = None

    @property
    def step_s(self) -> float:
        """How often `evaluate` must run for every table to be on time."""
        return min((c.step for c in self.configs), default=60.0)

    def evaluate(self, store: FeatureStore, now: float) -> None:
        """Step every table that is due at `now` (seconds; any monotonic clock)."""
        self._discover(store)
        for table in self.tables.values():
            if now >= table.next_due:
                table.step(store, self.verdicts)
                self.attributor.step(_reference_rows(table), table.steps, store, self.verdicts)
                self._estimate(table)
                for listener in self.on_step:
                    listener(table, self.verdicts, store)
                table.next_due = (table.next_due or now) + table.step_s
                if table.next_due <= now:  # fell behind: skip, never burst
                    table.next_due = now + table.step_s

    def collect(self) -> Iterator[Family]:
        """The latest verdicts (and the whole models' window counts), as metric families."""
        yield from drift_families(list(series_verdicts(self)), self.reference_of)
        yield from self.attributor.collect()
        yield from self.estimated.collect()

    def _estimate(self, table: DriftTable) -> None:
        """Every calibrated probability output of the table: its window's estimate."""
        for row in table.rows:
            if row.series.role != "prediction" or row.model.segment is not None:
                continue
            found = self._config_of(row.model)
            verdict = self.verdicts.get((row.model, row.series))
            if found is None or verdict is None or not isinstance(row.feature, NumericProfile):
                continue
            calibration = found[1].calibration.get(row.series.name)
            if calibration is not None:
                self.estimated.update(row.model, row.feature, calibration, verdict.window)

    def reference_of(self, model: ModelKey, series: SeriesKey) -> FeatureProfile | None:
        for table in self.tables.values():
            index = table.index.get((model, series))
            if index is not None:
                return table.rows[index].feature
        return None

    def _discover(self, store: FeatureStore) -> None:
        if store.generation == self._seen_generation and store is self._seen_store:
            return  # no series was created since the last look
        self._seen_generation, self._seen_store = store.generation, store
        known = {key for table in self.tables.values() for key in table.index}
        for model, series, _ in store.items():
            if (model, series) in known:
                continue
            found = self._config_of(model)
            if found is None:
                continue
            config, profile = found
            table_features = profile.features if series.role == "feature" else profile.predictions
            feature = table_features.get(series.name)
            if feature is None:
                continue  # no reference: nothing to drift from
            rule = _rule(config.drift, series)
            name: str = rule.method
            if name == "auto":
                name = methods.default_method(feature, profile.rows)
            name = methods.usable(name, feature)
            method = methods.METHODS[name]
            table = self.tables.setdefault(
                (config.window, config.step), DriftTable(config.window, config.step)
            )
            table.add(
                _Row(
                    model=model,
                    series=series,
                    feature=feature,
                    method=name,
                    threshold=rule.threshold or method.default_threshold,
                    min_samples=config.drift.min_samples,
                )
            )

    def _config_of(self, model: ModelKey) -> tuple[ModelDrift, Profile] | None:
        for config, profile in zip(self.configs, self.profiles, strict=True):
            if profile.matches(model) and profile.profile is not None:
                return config, profile.profile
        return None


def series_verdicts(
    engine: DriftEngine | None,
) -> Iterable[tuple[ModelKey, SeriesKey, Verdict]]:
    if engine is None:
        return []
    return ((model, series, v) for (model, series), v in engine.verdicts.items())
