"""Per-feature distribution state: bucket counts, category counts, missing/invalid, exemplars.

Each distribution is a mergeable sketch: `zero()` gives the identity and `merge()` is
associative and commutative on counts (exemplars keep the newer one), so worker processes,
windows and replicas combine the same way. Counts only grow: they are exported as
Prometheus counters that sum across replicas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.decode.kinds import KIND_BOOL, KIND_DOUBLE, KIND_INT, KIND_NULL, KIND_STRING
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.observations import Binned, Observations
from otelml.profile.binning import bucket_index

#: Index of each reason in the `invalid` counter arrays.
REASON_INDEX = {reason: i for i, reason in enumerate(semconv.INVALID_REASONS)}
OUT_OF_RANGE = REASON_INDEX[semconv.INVALID_OUT_OF_RANGE]
TYPE_MISMATCH = REASON_INDEX[semconv.INVALID_TYPE_MISMATCH]
UNKNOWN_CATEGORY = REASON_INDEX[semconv.INVALID_UNKNOWN_CATEGORY]
NOT_FINITE = REASON_INDEX[semconv.INVALID_NOT_FINITE]


def default_edges() -> tuple[float, ...]:
    """Bucket edges for numeric features without a reference profile.

    Symmetric and log-spaced, 1–2.5–5 per decade from 0.01 to 1e6 on both sides of 0 (49
    edges): wide enough for raw and scaled inputs alike, fine enough to see a shift.
    """
    positive = [m * 10.0**e for e in range(-2, 6) for m in (1.0, 2.5, 5.0)] + [1e6]
    return (*(-v for v in reversed(positive)), 0.0, *positive)


class NumericDistribution:
    """A histogram over fixed bucket upper bounds (`le`), with under/overflow buckets.

    Bucket i counts edges[i-1] < v <= edges[i]; the last bucket (+Inf) counts v > edges[-1].
    """

    kind = "numeric"

    def __init__(
        self,
        edges: Sequence[float] | npt.NDArray[np.float64],
        valid_range: tuple[float, float] | None = None,
    ) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.valid_range = valid_range
        self.counts = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.exemplars = Exemplars(len(self.counts))
        self.missing = 0
        self.invalid = np.zeros(len(semconv.INVALID_REASONS), dtype=np.int64)
        self.sum = 0.0
        self._filled = 0  # buckets with a count > 0: a new one always gets its exemplar

    @property
    def has_negative_buckets(self) -> bool:
        return bool(self.edges[0] < 0)

    def zero(self) -> NumericDistribution:
        return NumericDistribution(self.edges, self.valid_range)

    def observe(self, obs: Observations) -> Binned | None:
        """Count the observations; returns what was counted, bucket by bucket."""
        self.missing += obs.absent
        kind, number = obs.kind, obs.number
        if len(kind) == 0:
            return None
        if KIND_DOUBLE <= obs.uniform_kind <= KIND_BOOL and obs.all_finite:
            index = None  # the common case: every value usable, no masks needed
            values = number
        else:
            finite = np.isfinite(number)
            numeric = (kind >= KIND_DOUBLE) & (kind <= KIND_BOOL)
            nan = np.isnan(number)
            self.missing += int(np.count_nonzero(kind == KIND_NULL))
            self.missing += int(np.count_nonzero(numeric & nan))
            self.invalid[TYPE_MISMATCH] += int(np.count_nonzero(~numeric & (kind != KIND_NULL)))
            self.invalid[NOT_FINITE] += int(np.count_nonzero(numeric & ~finite & ~nan))
            index = np.flatnonzero(numeric & finite)
            values = number[index]
            if len(values) == 0:
                return None
        bucket = bucket_index(self.edges, values)  # the profile's binning rule, shared
        added = np.bincount(bucket, minlength=len(self.counts))
        self.counts += added
        filled = int(np.count_nonzero(self.counts))
        fills_empty, self._filled = filled > self._filled, filled
        self.sum += float(values.sum())
        if self.valid_range is not None:
            low, high = self.valid_range
            # Above the reference maximum is exactly the +Inf bucket when that is the top edge.
            above = (
                int(added[-1]) if high == self.edges[-1] else int(np.count_nonzero(values > high))
            )
            self.invalid[OUT_OF_RANGE] += above + int(np.count_nonzero(values < low))
        record = obs.record if index is None else obs.record[index]
        self.exemplars.offer(bucket, values, record, obs.origin, fills_empty)
        return Binned(bucket, record, values)

    def merge(self, other: NumericDistribution) -> None:
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge histograms with different bucket edges")
        self.counts += other.counts
        self._filled = int(np.count_nonzero(self.counts))
        self.missing += other.missing
        self.invalid += other.invalid
        self.sum += other.sum
        self.exemplars.merge(other.exemplars)

    def series_count(self) -> int:
        sum_count = 0 if self.has_negative_buckets else 2
        return len(self.counts) + sum_count + 1 + len(self.invalid)


class CategoricalDistribution:
    """Counts of a fixed (reference top-K) or learned (first-seen, capped) set of categories.

    Everything else counts in `__other__`; `vocabulary` (the reference's full category set,
    when known) flags values the model never saw in training as `unknown_category`.
    """

    kind = "categorical"

    def __init__(
        self,
        categories: Sequence[str] = (),
        *,
        capacity: int | None = None,
        learn: bool = False,
        vocabulary: frozenset[str] | None = None,
    ) -> None:
        self.categories: list[str] = list(categories)
        self.capacity = max(capacity or 0, len(self.categories))
        self.learn = learn
        self.vocabulary = vocabulary
        self.slot = {category: i for i, category in enumerate(self.categories)}
        # The last slot is __other__; slots beyond len(categories) wait to be learned.
        self.counts = np.zeros(self.capacity + 1, dtype=np.int64)
        self.exemplars = Exemplars(self.capacity + 1)
        self._filled = 0
        self.missing = 0
        self.invalid = np.zeros(len(semconv.INVALID_REASONS), dtype=np.int64)

    @property
    def other_slot(self) -> int:
        return self.capacity

    def zero(self) -> CategoricalDistribution:
        clone = CategoricalDistribution(
            self.categories, capacity=self.capacity, learn=self.learn, vocabulary=self.vocabulary
        )
        return clone

    def observe(self, obs: Observations) -> Binned | None:
        """Count the observations; returns what was counted, slot by slot."""
        kind = obs.kind
        self.missing += obs.absent
        if len(kind) == 0:
            return None
        if obs.uniform_kind == KIND_STRING:
            usable_index = None
        else:
            double_nan = (kind == KIND_DOUBLE) & np.isnan(obs.number)
            self.missing += int(np.count_nonzero(kind == KIND_NULL))
            self.missing += int(np.count_nonzero(double_nan))
            usable = (kind == KIND_STRING) | (kind == KIND_INT) | (kind == KIND_BOOL)
            self.invalid[TYPE_MISMATCH] += int(
                np.count_nonzero(~usable & (kind != KIND_NULL) & ~double_nan)
            )
            if not usable.any():
                return None
            usable_index = np.flatnonzero(usable)
        slots = self._slots(obs, usable_index)
        unknown = slots < 0  # values outside the reference vocabulary
        if unknown.any():
            self.invalid[UNKNOWN_CATEGORY] += int(np.count_nonzero(unknown))
            slots[unknown] = self.other_slot
        self.counts += np.bincount(slots, minlength=len(self.counts))
        filled = int(np.count_nonzero(self.counts))
        fills_empty, self._filled = filled > self._filled, filled
        record = obs.record if usable_index is None else obs.record[usable_index]
        number = obs.number if usable_index is None else obs.number[usable_index]
        self.exemplars.offer(slots, number, record, obs.origin, fills_empty)
        return Binned(slots, record, number)

    def _slots(
        self, obs: Observations, usable_index: npt.NDArray[np.intp] | None
    ) -> npt.NDArray[np.intp]:
        """Category slot of each usable observation (-1: unknown to the reference vocabulary)."""
        kind = obs.kind if usable_index is None else obs.kind[usable_index]
        slots = np.empty(len(kind), dtype=np.intp)
        all_strings = obs.uniform_kind == KIND_STRING
        string_index = None if all_strings else np.flatnonzero(kind == KIND_STRING)
        if string_index is None or len(string_index):
            text = obs.text if usable_index is None else obs.text[usable_index]
            where = slice(None) if string_index is None else string_index
            codes = text[where]
            # Codes index the request's string table: count them without sorting.
            present = np.flatnonzero(np.bincount(codes, minlength=len(obs.strings)))
            table = np.full(len(obs.strings), -1, dtype=np.intp)
            table[present] = [self._slot_of(obs.strings[c]) for c in present.tolist()]
            slots[where] = table[codes]
        if not all_strings:
            # Ints become "7", bools "true"/"false": how the reference profile names them.
            integer = obs.integer if usable_index is None else obs.integer[usable_index]
            for label_kind, name in ((KIND_INT, str), (KIND_BOOL, _bool_name)):
                where = np.flatnonzero(kind == label_kind)
                if len(where):
                    uniques, inverse = np.unique(integer[where], return_inverse=True)
                    names = [self._slot_of(name(v)) for v in uniques.tolist()]
                    slots[where] = np.asarray(names, dtype=np.intp)[inverse]
        return slots

    def _slot_of(self, category: str) -> int:
        slot = self.slot.get(category)
        if slot is not None:
            return slot
        if self.vocabulary is not None and category not in self.vocabulary:
            return -1
        if self.learn and len(self.categories) < self.capacity:
            slot = len(self.categories)
            self.categories.append(category)
            self.slot[category] = slot
            return slot
        return self.other_slot

    def merge(self, other: CategoricalDistribution) -> None:
        """Merge by category name, so two workers that learned categories in another order agree."""
        mapping = np.full(len(other.counts), self.other_slot, dtype=np.intp)
        for index, category in enumerate(other.categories):
            slot = self._slot_of(category)
            mapping[index] = slot if slot >= 0 else self.other_slot
        np.add.at(self.counts, mapping, other.counts)
        self._filled = int(np.count_nonzero(self.counts))
        moved = Exemplars(len(self.counts))
        moved.merge(_remap(other.exemplars, mapping, len(self.counts)))
        self.exemplars.merge(moved)
        self.missing += other.missing
        self.invalid += other.invalid

    def series_count(self) -> int:
        return self.capacity + 1 + 1 + len(self.invalid)


def _remap(exemplars: Exemplars, mapping: npt.NDArray[np.intp], size: int) -> Exemplars:
    out = Exemplars(size)
    order = np.argsort(exemplars.time_s, kind="stable")  # newest written last, so it wins
    out.trace_id[mapping[order]] = exemplars.trace_id[order]
    out.span_id[mapping[order]] = exemplars.span_id[order]
    out.value[mapping[order]] = exemplars.value[order]
    out.time_s[mapping[order]] = exemplars.time_s[order]
    return out


def _bool_name(value: int) -> str:
    return "true" if value else "false"


Distribution = NumericDistribution | CategoricalDistribution
