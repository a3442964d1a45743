"""Verdict history: the last steps of every drift series and of performance, kept in memory.

The page shows how a score got where it is without a Prometheus behind the gateway. The drift
engine calls `record` each time a table steps; one ring per table holds, per step and series,
the decision score, the verdict, the window's observations and the cumulative missing/invalid
counts (their differences over a window are the window's rates). Memory is fixed: `points`
steps × series × 33 bytes, plus at most `MAX_EVENTS` drift events per series; performance keeps
`points` (time, labels, metrics) entries per model output.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from otelml.gateway.drift import methods
from otelml.gateway.drift.engine import DriftTable
from otelml.gateway.drift.verdict import Verdict
from otelml.gateway.performance.metrics import MACRO
from otelml.gateway.performance.tracker import GroundTruthTracker
from otelml.gateway.state.distributions import NOT_FINITE, TYPE_MISMATCH, Distribution
from otelml.gateway.state.keys import ModelKey, SeriesKey
from otelml.gateway.state.store import FeatureStore

_Array = TypeVar("_Array", bound="np.ndarray[Any, Any]")

#: Drift events kept per series (the newest).
MAX_EVENTS = 20


@dataclass(frozen=True)
class DriftEvent:
    """A window that crossed into drift: when, how far, and the bucket that moved most."""

    time_s: float
    score: float
    bucket: int
    reference_share: float
    current_share: float
    trace_id: str | None


@dataclass(frozen=True)
class Point:
    time_s: float
    score: float | None
    detected: bool | None
    observations: int


class _Ring:
    """`points` steps of one drift table; columns are the table's rows (grown as it grows)."""

    def __init__(self, points: int) -> None:
        self.points = points
        self.taken = 0
        self.time_s = np.zeros(points, dtype=np.float64)
        self.score = np.full((points, 0), np.nan, dtype=np.float32)
        self.detected = np.full((points, 0), -1, dtype=np.int8)
        self.observations = np.zeros((points, 0), dtype=np.int32)
        self.missing = np.zeros((points, 0), dtype=np.int64)
        self.invalid = np.zeros((points, 0), dtype=np.int64)
        self.total = np.zeros((points, 0), dtype=np.int64)

    def nbytes(self) -> int:
        arrays = (self.time_s, self.score, self.detected, self.observations)
        return sum(a.nbytes for a in arrays) + self.missing.nbytes * 3

    def grow(self, rows: int) -> None:
        have = self.score.shape[1]
        if rows <= have:
            return
        extra = rows - have

        def pad(array: _Array, fill: float) -> _Array:
            filler = np.full((self.points, extra), fill, array.dtype)
            return cast(_Array, np.concatenate([array, filler], 1))

        self.score = pad(self.score, np.nan)
        self.detected = pad(self.detected, -1)
        self.observations = pad(self.observations, 0)
        self.missing = pad(self.missing, 0)
        self.invalid = pad(self.invalid, 0)
        self.total = pad(self.total, 0)

    def order(self) -> list[int]:
        """Slots from the oldest kept step to the newest."""
        count = min(self.taken, self.points)
        return [(self.taken - count + i) % self.points for i in range(count)]


class History:
    def __init__(self, span_s: float = 3600.0, max_points: int = 720) -> None:
        self.span_s = span_s
        self.max_points = max_points
        self.rings: dict[int, _Ring] = {}
        self.events: dict[tuple[ModelKey, SeriesKey], deque[DriftEvent]] = {}
        self.performance: dict[tuple[ModelKey, str], deque[tuple[float, int, dict[str, float]]]]
        self.performance = {}

    def nbytes(self) -> int:
        """Bytes of the drift rings (exact) and an upper bound of events and performance."""
        rings = sum(r.nbytes() for r in self.rings.values())
        events = sum(len(e) for e in self.events.values()) * 200
        performance = sum(len(p) for p in self.performance.values()) * 600
        return rings + events + performance

    def points_for(self, step_s: float, window_steps: int) -> int:
        """Steps kept: the span, at least one window plus one step, at most max_points."""
        wanted = max(math.ceil(self.span_s / step_s), window_steps + 1)
        return max(2, min(self.max_points, wanted))

    def record(
        self,
        table: DriftTable,
        verdicts: dict[tuple[ModelKey, SeriesKey], Verdict],
        store: FeatureStore,
    ) -> None:
        """One step of `table` (called by the drift engine right after the table stepped)."""
        ring = self.rings.get(id(table))
        if ring is None:
            ring = self.rings[id(table)] = _Ring(self.points_for(table.step_s, table.steps))
        rows = len(table.rows)
        ring.grow(rows)
        slot = ring.taken % ring.points
        now = time.time()
        ring.time_s[slot] = now
        score = np.full(ring.score.shape[1], np.nan, dtype=np.float32)
        detected = np.full(ring.score.shape[1], -1, dtype=np.int8)
        observations = np.zeros(ring.score.shape[1], dtype=np.int32)
        missing = np.zeros(ring.score.shape[1], dtype=np.int64)
        invalid = np.zeros_like(missing)
        total = np.zeros_like(missing)
        for i, row in enumerate(table.rows):
            key = (row.model, row.series)
            verdict = verdicts.get(key)
            decision: float | None = None
            distribution = store.existing(row.model, row.series)
            if distribution is not None:
                missing[i] = distribution.missing
                invalid[i] = int(distribution.invalid.sum())
                total[i] = rows_seen(distribution)
            if verdict is None:
                continue
            observations[i] = verdict.observations
            if verdict.detected is not None:
                detected[i] = int(verdict.detected)
                decision = verdict.scores.get(_label(verdict))
                score[i] = np.nan if decision is None else decision
            previous = ring.detected[(ring.taken - 1) % ring.points, i] if ring.taken else -1
            if verdict.detected and previous != 1:
                self._event(key, verdict, row.feature.counts, now, decision)
        ring.score[slot], ring.detected[slot] = score, detected
        ring.observations[slot], ring.missing[slot] = observations, missing
        ring.invalid[slot], ring.total[slot] = invalid, total
        ring.taken += 1

    def _event(
        self,
        key: tuple[ModelKey, SeriesKey],
        verdict: Verdict,
        reference: tuple[int, ...],
        now: float,
        score: float | None,
    ) -> None:
        bucket, reference_share, current_share = moved_most(
            np.asarray(verdict.window, dtype=np.float64), np.asarray(reference, dtype=np.float64)
        )
        events = self.events.setdefault(key, deque(maxlen=MAX_EVENTS))
        exemplar = verdict.exemplar
        events.append(
            DriftEvent(
                time_s=now,
                score=float("nan") if score is None else score,
                bucket=bucket,
                reference_share=reference_share,
                current_share=current_share,
                trace_id=exemplar.trace_id if exemplar is not None else None,
            )
        )

    def series(self, table: DriftTable, row: int) -> list[Point]:
        ring = self.rings.get(id(table))
        if ring is None or row >= ring.score.shape[1]:
            return []
        out = []
        for slot in ring.order():
            detected = int(ring.detected[slot, row])
            score = float(ring.score[slot, row])
            out.append(
                Point(
                    time_s=float(ring.time_s[slot]),
                    score=None if math.isnan(score) else score,
                    detected=None if detected < 0 else bool(detected),
                    observations=int(ring.observations[slot, row]),
                )
            )
        return out

    def window_quality(self, table: DriftTable, row: int) -> tuple[int, int, int] | None:
        """(rows, missing, invalid) counted over the last window, or None before one step."""
        ring = self.rings.get(id(table))
        if ring is None or ring.taken == 0 or row >= ring.score.shape[1]:
            return None
        newest = ring.taken - 1
        base = max(newest - table.steps, newest - (ring.points - 1))
        base_total = base_missing = base_invalid = 0  # before the first step: nothing counted
        if base >= 0:
            oldest = base % ring.points
            base_total = int(ring.total[oldest, row])
            base_missing = int(ring.missing[oldest, row])
            base_invalid = int(ring.invalid[oldest, row])
        newest %= ring.points
        return (
            int(ring.total[newest, row]) - base_total,
            int(ring.missing[newest, row]) - base_missing,
            int(ring.invalid[newest, row]) - base_invalid,
        )

    def record_performance(self, tracker: GroundTruthTracker, step_s: float) -> None:
        """The performance of every model output now, and how many labels it rests on."""
        now = time.time()
        points = max(2, min(self.max_points, math.ceil(self.span_s / max(step_s, 1e-3))))
        for key, (pairs, metrics) in tracker.metrics(now).items():
            summary = {
                metric if label == "" else f"{metric}_macro": value
                for (metric, label), value in metrics.items()
                if label in ("", MACRO) and math.isfinite(value)
            }
            kept = self.performance.setdefault(key, deque(maxlen=points))
            kept.append((now, pairs, summary))


def rows_seen(distribution: Distribution) -> int:
    """Rows the series was expected in: counted, missing, or unusable (a type mismatch or
    ±Inf). Out-of-range and unknown-category values are counted in a bucket already."""
    unusable = distribution.invalid[TYPE_MISMATCH] + distribution.invalid[NOT_FINITE]
    return int(distribution.counts.sum()) + distribution.missing + int(unusable)


def _label(verdict: Verdict) -> str:
    """The score label the verdict's method decides on."""
    return methods.METHODS[verdict.method].label


def moved_most(
    current: npt.NDArray[np.float64], reference: npt.NDArray[np.float64]
) -> tuple[int, float, float]:
    """The bucket whose share moved most between reference and current, and both shares."""
    width = min(len(current), len(reference))
    current_share = current[:width] / max(float(current[:width].sum()), 1.0)
    reference_share = reference[:width] / max(float(reference[:width].sum()), 1.0)
    if width == 0:
        return 0, 0.0, 0.0
    moved = int(np.argmax(np.abs(current_share - reference_share)))
    return moved, float(reference_share[moved]), float(current_share[moved])
