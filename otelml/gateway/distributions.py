"""Per-feature distribution state: bucket counts, category counts, missing/invalid, exemplars.

Each distribution is a mergeable sketch: `zero()` gives the identity and `merge()` is
associative and commutative on counts (exemplars keep the newer one), so worker processes,
windows and replicas combine the same way. Counts only grow: they are exported as
Prometheus counters that sum across replicas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow.compute as pc

from otelml import semconv
from otelml.gateway.exemplars import Exemplars
from otelml.gateway.observations import (
    KIND_BOOL,
    KIND_DOUBLE,
    KIND_INT,
    KIND_NULL,
    KIND_STRING,
    Observations,
)

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

    @property
    def has_negative_buckets(self) -> bool:
        return bool(self.edges[0] < 0)

    def zero(self) -> NumericDistribution:
        return NumericDistribution(self.edges, self.valid_range)

    def observe(self, obs: Observations) -> None:
        kind = obs.kind
        numeric = (kind == KIND_DOUBLE) | (kind == KIND_INT) | (kind == KIND_BOOL)
        number = obs.number
        nan = np.isnan(number)
        self.missing += obs.absent + int(np.count_nonzero(kind == KIND_NULL))
        self.missing += int(np.count_nonzero(numeric & nan))
        self.invalid[TYPE_MISMATCH] += int(np.count_nonzero(~numeric & (kind != KIND_NULL)))
        usable = numeric & ~nan
        infinite = usable & np.isinf(number)
        n_infinite = int(np.count_nonzero(infinite))
        if n_infinite:
            self.invalid[NOT_FINITE] += n_infinite
            usable &= ~infinite
        if usable.all():
            index = None
            values = number
        else:
            index = np.flatnonzero(usable)
            values = number[index]
        if len(values) == 0:
            return
        bucket = np.searchsorted(self.edges, values, side="left")
        self.counts += np.bincount(bucket, minlength=len(self.counts))
        self.sum += float(values.sum())
        if self.valid_range is not None:
            low, high = self.valid_range
            self.invalid[OUT_OF_RANGE] += int(np.count_nonzero((values < low) | (values > high)))
        if index is None:
            self.exemplars.record(bucket, values, obs.record, obs.origin)
        else:
            self.exemplars.record(bucket, values, obs.record[index], obs.origin)

    def merge(self, other: NumericDistribution) -> None:
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge histograms with different bucket edges")
        self.counts += other.counts
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

    def observe(self, obs: Observations) -> None:
        kind = obs.kind
        self.missing += obs.absent + int(np.count_nonzero(kind == KIND_NULL))
        double_nan = (kind == KIND_DOUBLE) & np.isnan(obs.number)
        self.missing += int(np.count_nonzero(double_nan))
        is_string = kind == KIND_STRING
        is_int = kind == KIND_INT
        is_bool = kind == KIND_BOOL
        usable = is_string | is_int | is_bool
        self.invalid[TYPE_MISMATCH] += int(
            np.count_nonzero(~usable & (kind != KIND_NULL) & ~double_nan)
        )
        if not usable.any():
            return
        slots = np.full(len(kind), -1, dtype=np.intp)
        if is_string.any():
            index = np.flatnonzero(is_string)
            encoded = pc.dictionary_encode(obs.text(index))
            lookup = np.array(
                [self._slot_of(v) for v in encoded.dictionary.to_pylist()], dtype=np.intp
            )
            codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)
            slots[index] = lookup[codes]
        for mask, values in (
            (is_int, obs.integer),
            (is_bool, obs.number),
        ):
            if mask.any():
                index = np.flatnonzero(mask)
                uniques, inverse = np.unique(values[index], return_inverse=True)
                names = [_category_name(v, mask is is_bool) for v in uniques.tolist()]
                lookup = np.array([self._slot_of(n) for n in names], dtype=np.intp)
                slots[index] = lookup[inverse]
        unknown = slots < -1  # -2 marks values outside the vocabulary
        if unknown.any():
            self.invalid[UNKNOWN_CATEGORY] += int(np.count_nonzero(unknown))
            slots[unknown] = self.other_slot
        used = np.flatnonzero(slots >= 0)
        bucket = slots[used]
        self.counts += np.bincount(bucket, minlength=len(self.counts))
        self.exemplars.record(bucket, obs.number[used], obs.record[used], obs.origin)

    def _slot_of(self, category: str) -> int:
        slot = self.slot.get(category)
        if slot is not None:
            return slot
        if self.vocabulary is not None and category not in self.vocabulary:
            return -2
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
            slot = self.slot.get(category)
            if slot is None:
                slot = self._slot_of(category)
            mapping[index] = max(slot, 0) if slot >= 0 else self.other_slot
        np.add.at(self.counts, mapping, other.counts)
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


def _category_name(value: float | int, is_bool: bool) -> str:
    if is_bool:
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


Distribution = NumericDistribution | CategoricalDistribution
