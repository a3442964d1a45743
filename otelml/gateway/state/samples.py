"""Request samples: a few recent `ml.*` rows per bucket, so a bucket opens the requests behind it.

An exemplar gives one trace id per bucket; the page wants more: several recent requests per
bucket, and for each the whole row as the gateway saw it (every feature and prediction of that
row), so that a drifted bucket shows *which* requests put values there and what else they
carried. Memory is fixed by configuration, not by traffic:
- per model, a table of `sample_rows` rows (trace id, span id, time, one cell per series);
- per series, `per_bucket` slots per bucket, each pointing at a row of that table.
A new row reuses the oldest row no slot points at any more (else the oldest row: its slots then
read as empty). Sampling runs at most every `refresh_s` per model, a few rows at a time, so it
costs next to nothing on the hot path; a model without any sample yet is sampled at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.decode import Records
from otelml.gateway.decode.kinds import KIND_BOOL, KIND_DOUBLE, KIND_INT, KIND_STRING
from otelml.gateway.state.distributions import (
    CategoricalDistribution,
    Distribution,
    NumericDistribution,
)
from otelml.gateway.state.keys import ModelKey, SeriesKey
from otelml.gateway.state.store import FeatureStore
from otelml.profile.binning import bucket_index

#: Cell kinds of a sampled row.
CELL_ABSENT, CELL_NUMBER, CELL_TEXT, CELL_NOT_KEPT = 0, 1, 2, 3
#: Distinct strings kept per model, and their length: labels beyond are shown as not kept.
MAX_STRINGS = 256
MAX_STRING_CHARS = 128
#: Series (columns) a model's sampled rows hold at most.
MAX_COLUMNS = 256
#: Rows sampled from one request, per model, when sampling is due.
ROWS_PER_PASS = 4


@dataclass(frozen=True)
class Sample:
    """One sampled request row, as the gateway saw it."""

    trace_id: str
    span_id: str
    time_s: float
    row: int
    #: (role, name) → the value: a number, a string, or None (absent).
    values: dict[SeriesKey, float | str | None]


class _Slots:
    """Per bucket, `per_bucket` (row, sequence) pointers; sequence 0 = empty."""

    __slots__ = ("entry", "seq")

    def __init__(self, buckets: int, per_bucket: int) -> None:
        self.entry = np.full((buckets, per_bucket), -1, dtype=np.int32)
        self.seq = np.zeros((buckets, per_bucket), dtype=np.int64)


class ModelSamples:
    """The sampled rows of one model version and the bucket slots of its series."""

    def __init__(self, rows: int, per_bucket: int) -> None:
        self.per_bucket = per_bucket
        self.columns: list[SeriesKey] = []
        self.column_of: dict[SeriesKey, int] = {}
        self.trace_id = np.zeros((rows, 16), dtype=np.uint8)
        self.span_id = np.zeros((rows, 8), dtype=np.uint8)
        self.time_s = np.zeros(rows, dtype=np.float64)
        self.row = np.zeros(rows, dtype=np.int32)
        self.seq = np.zeros(rows, dtype=np.int64)  # 0 = never used
        self.refs = np.zeros(rows, dtype=np.int32)  # slots pointing at each row
        self.kind = np.zeros((rows, 8), dtype=np.int8)
        self.value = np.zeros((rows, 8), dtype=np.float64)
        self.strings: list[str] = []
        self.string_code: dict[str, int] = {}
        self.slots: dict[SeriesKey, _Slots] = {}
        self.next_seq = 1
        self.next_due = 0.0

    def nbytes(self) -> int:
        """Bytes held: arrays exactly, strings by their length (an upper bound per string)."""
        arrays = (self.trace_id, self.span_id, self.time_s, self.row, self.seq, self.refs)
        total = sum(a.nbytes for a in arrays) + self.kind.nbytes + self.value.nbytes
        total += sum(s.entry.nbytes + s.seq.nbytes for s in self.slots.values())
        return total + sum(49 + len(s) for s in self.strings)

    def column(self, series: SeriesKey) -> int:
        """The column of a series (-1 when the model already has MAX_COLUMNS)."""
        found = self.column_of.get(series)
        if found is not None:
            return found
        if len(self.columns) >= MAX_COLUMNS:
            return -1
        index = len(self.columns)
        if index >= self.kind.shape[1]:
            width = min(MAX_COLUMNS, self.kind.shape[1] * 2)
            self.kind = _widen(self.kind, width)
            self.value = _widen(self.value, width)
        self.columns.append(series)
        self.column_of[series] = index
        return index

    def text(self, value: str) -> tuple[int, float]:
        """(cell kind, value) of a string: a code into `strings`, or not kept."""
        code = self.string_code.get(value)
        if code is None:
            if len(self.strings) >= MAX_STRINGS or len(value) > MAX_STRING_CHARS:
                return CELL_NOT_KEPT, 0.0
            code = self.string_code[value] = len(self.strings)
            self.strings.append(value)
        return CELL_TEXT, float(code)

    def allocate(self) -> int:
        """A row to write: the oldest one no slot points at, else the oldest of all."""
        free = np.flatnonzero(self.refs == 0)
        if len(free):
            return int(free[np.argmin(self.seq[free])])
        entry = int(np.argmin(self.seq))
        self.refs[entry] = 0  # its slots now read as empty (sequence mismatch)
        return entry

    def point(self, series: SeriesKey, buckets: int, bucket: int, entry: int) -> None:
        """Let the oldest slot of `bucket` point at `entry`."""
        slots = self.slots.get(series)
        if slots is None or slots.entry.shape[0] != buckets:
            slots = self.slots[series] = _Slots(buckets, self.per_bucket)
        k = int(np.argmin(slots.seq[bucket]))
        old = int(slots.entry[bucket, k])
        if old >= 0 and self.seq[old] == slots.seq[bucket, k]:
            self.refs[old] -= 1
        slots.entry[bucket, k] = entry
        slots.seq[bucket, k] = self.seq[entry]
        self.refs[entry] += 1

    def bucket(self, series: SeriesKey, bucket: int) -> list[Sample]:
        """The samples of one bucket, newest first."""
        slots = self.slots.get(series)
        if slots is None or not 0 <= bucket < slots.entry.shape[0]:
            return []
        out = []
        for entry, seq in zip(
            slots.entry[bucket].tolist(), slots.seq[bucket].tolist(), strict=True
        ):
            if entry >= 0 and seq and self.seq[entry] == seq:
                out.append(self.sample(entry))
        out.sort(key=lambda s: -s.time_s)
        return out

    def sample(self, entry: int) -> Sample:
        values: dict[SeriesKey, float | str | None] = {}
        kinds = self.kind[entry].tolist()
        numbers = self.value[entry].tolist()
        for index, series in enumerate(self.columns):
            kind = kinds[index]
            if kind == CELL_NUMBER:
                values[series] = numbers[index]
            elif kind == CELL_TEXT:
                values[series] = self.strings[int(numbers[index])]
            elif kind == CELL_NOT_KEPT:
                values[series] = "(not kept)"
        return Sample(
            trace_id=self.trace_id[entry].tobytes().hex(),
            span_id=self.span_id[entry].tobytes().hex(),
            time_s=float(self.time_s[entry]),
            row=int(self.row[entry]),
            values=values,
        )

    def find(self, trace_id: bytes) -> list[Sample]:
        """Every kept row of a trace (a batch request can have several)."""
        used = np.flatnonzero(self.seq > 0)
        match = used[(self.trace_id[used] == np.frombuffer(trace_id, np.uint8)).all(axis=1)]
        return sorted((self.sample(int(e)) for e in match), key=lambda s: s.row)


_Array = TypeVar("_Array", bound="np.ndarray[Any, Any]")


def _widen(array: _Array, width: int) -> _Array:
    wider = np.zeros((array.shape[0], width), dtype=array.dtype)
    wider[:, : array.shape[1]] = array
    return cast(_Array, wider)


class RequestSamples:
    """Samples of every model; fed by the features connector, read by the UI's query layer."""

    #: Seconds between sampling passes per model (class-wide; tests set it to 0).
    refresh_s = 0.25

    def __init__(self, rows_per_model: int = 512, per_bucket: int = 4) -> None:
        self.rows_per_model = rows_per_model
        self.per_bucket = per_bucket
        self.models: dict[ModelKey, ModelSamples] = {}

    def nbytes(self) -> int:
        return sum(m.nbytes() for m in self.models.values())

    def items(self) -> Iterator[tuple[ModelKey, ModelSamples]]:
        return iter(self.models.items())

    def merge(self, other: RequestSamples) -> None:
        """Add another worker's samples: its referenced rows, oldest first, into our slots."""
        for model, theirs in other.models.items():
            mine = self.models.get(model)
            if mine is None:
                mine = self.models[model] = ModelSamples(self.rows_per_model, self.per_bucket)
            pointed: dict[int, list[tuple[SeriesKey, int, int]]] = {}
            for series, slots in theirs.slots.items():
                valid = (slots.entry >= 0) & (slots.seq > 0)
                for bucket, k in zip(*np.nonzero(valid), strict=True):
                    entry = int(slots.entry[bucket, k])
                    if theirs.seq[entry] == slots.seq[bucket, k]:
                        pointed.setdefault(entry, []).append(
                            (series, slots.entry.shape[0], int(bucket))
                        )
            for entry in sorted(pointed, key=lambda e: theirs.time_s[e]):
                copy = mine.allocate()
                mine.trace_id[copy] = theirs.trace_id[entry]
                mine.span_id[copy] = theirs.span_id[entry]
                mine.time_s[copy] = theirs.time_s[entry]
                mine.row[copy] = theirs.row[entry]
                mine.seq[copy] = mine.next_seq
                mine.next_seq += 1
                mine.kind[copy] = CELL_ABSENT
                for series, value in theirs.sample(entry).values.items():
                    column = mine.column(series)
                    if column < 0 or value is None:
                        continue
                    if isinstance(value, str):
                        mine.kind[copy, column], mine.value[copy, column] = mine.text(value)
                    else:
                        mine.kind[copy, column], mine.value[copy, column] = CELL_NUMBER, value
                for series, buckets, bucket in pointed[entry]:
                    mine.point(series, buckets, bucket, copy)

    def offer(
        self,
        records: Records,
        record_group: npt.NDArray[np.int64],
        groups: list[ModelKey],
        key_series: list[SeriesKey | None],
        store: FeatureStore,
    ) -> None:
        """Sample a few rows of each model of a request, if that model is due."""
        if self.per_bucket == 0:
            return
        now = time.monotonic()
        due = []
        for group, model in enumerate(groups):
            samples = self.models.get(model)
            if samples is None:
                if not store.knows(model):
                    continue  # refused by the series budget: no buckets to keep rows for
                samples = self.models[model] = ModelSamples(self.rows_per_model, self.per_bucket)
            if now >= samples.next_due:
                samples.next_due = now + self.refresh_s
                due.append(group)
        if not due:
            return
        leaves = records.leaves
        picks = {group: _spread(np.flatnonzero(record_group == group)) for group in due}
        chosen_records = np.concatenate(list(picks.values()))
        if len(chosen_records) == 0:
            return
        # Only the chosen records' leaves are looked at: a 1M-row batch costs one isin.
        sub = np.flatnonzero(np.isin(leaves.record, chosen_records))
        position = _positions(leaves.entry[sub], leaves.from_array[sub])
        rows_of = np.ones(records.count, dtype=np.int64)
        np.maximum.at(rows_of, leaves.record[sub], position + 1)
        is_series = np.fromiter((s is not None for s in key_series), bool, len(key_series))
        for group in due:
            chosen = _rows(picks[group], rows_of)
            if chosen:
                self._take(
                    records, chosen, sub, position, is_series, key_series, groups[group], store
                )

    def _take(
        self,
        records: Records,
        chosen: dict[int, int],
        sub: npt.NDArray[np.intp],
        position: npt.NDArray[np.int64],
        is_series: npt.NDArray[np.bool_],
        key_series: list[SeriesKey | None],
        model: ModelKey,
        store: FeatureStore,
    ) -> None:
        """Write the chosen (record, row) pairs; `sub` are the leaves of chosen records."""
        leaves = records.leaves
        samples = self.models[model]
        wanted_row = np.full(records.count, -1, dtype=np.int64)
        wanted_row[list(chosen)] = list(chosen.values())
        row_of_leaf = wanted_row[leaves.record[sub]]
        mine = sub[
            is_series[leaves.key[sub]]
            & (row_of_leaf >= 0)
            & (~leaves.from_array[sub] | (position == row_of_leaf))
        ]
        entries: dict[int, int] = {}
        for record, row in chosen.items():
            entry = samples.allocate()
            samples.trace_id[entry] = records.trace_id[record]
            samples.span_id[entry] = records.span_id[record]
            samples.time_s[entry] = records.time_s[record]
            samples.row[entry] = row
            samples.seq[entry] = samples.next_seq
            samples.next_seq += 1
            samples.kind[entry] = CELL_ABSENT
            entries[record] = entry
        known = store.model(model)
        for index in mine.tolist():
            series = key_series[int(leaves.key[index])]
            assert series is not None
            column = samples.column(series)
            if column < 0:
                continue
            entry = entries[int(leaves.record[index])]
            kind, value, bucket = _cell(records, index, samples, known.get(series))
            samples.kind[entry, column] = kind
            samples.value[entry, column] = value
            distribution = known.get(series)
            if bucket >= 0 and distribution is not None:
                samples.point(series, len(distribution.counts), bucket, entry)


def _spread(records: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Up to ROWS_PER_PASS records spread over a model's records in a request."""
    if len(records) <= ROWS_PER_PASS:
        return records
    return records[np.linspace(0, len(records) - 1, ROWS_PER_PASS, dtype=int)]


def _rows(records: npt.NDArray[np.intp], rows_of: npt.NDArray[np.int64]) -> dict[int, int]:
    """A row of each record: spread over a batch's rows, so a big batch does not always give
    row 0."""
    clock = time.monotonic_ns() // 1000
    return {
        record: (n * 7919 + clock) % int(rows_of[record]) if rows_of[record] > 1 else 0
        for n, record in enumerate(records.tolist())
    }


def _positions(
    entry: npt.NDArray[np.int32], from_array: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Each leaf's index within its array attribute (0 for scalars); an entry's leaves are
    contiguous, as the scanner writes them."""
    if len(entry) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(entry, return_index=True, return_inverse=True)
    return np.asarray(np.where(from_array, np.arange(len(entry)) - first[inverse], 0), np.int64)


def _cell(
    records: Records, index: int, samples: ModelSamples, distribution: Distribution | None
) -> tuple[int, float, int]:
    """(cell kind, value, bucket or -1) of one leaf, bucketed as its distribution counts it."""
    leaves = records.leaves
    kind = int(leaves.kind[index])
    categorical = isinstance(distribution, CategoricalDistribution)
    label: str | None = None
    if kind == KIND_STRING:
        label = records.strings[int(leaves.text[index])]
    elif kind in (KIND_INT, KIND_BOOL) and categorical:
        integer = int(leaves.integer[index])
        label = ("true" if integer else "false") if kind == KIND_BOOL else str(integer)
    elif KIND_DOUBLE <= kind <= KIND_BOOL:
        number = float(leaves.number[index])
        if not np.isfinite(number):
            return (CELL_ABSENT, 0.0, -1) if np.isnan(number) else (CELL_NUMBER, number, -1)
        if not isinstance(distribution, NumericDistribution):
            return CELL_NUMBER, number, -1
        bucket = int(bucket_index(distribution.edges, np.array([number]))[0])
        return CELL_NUMBER, number, bucket
    if label is None:
        return CELL_ABSENT, 0.0, -1
    cell, value = samples.text(label)
    if not isinstance(distribution, CategoricalDistribution):
        return cell, value, -1
    slot = distribution.slot.get(label, distribution.other_slot)
    if label == semconv.OTHER_CATEGORY:
        slot = distribution.other_slot
    return cell, value, slot
