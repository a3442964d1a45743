"""The features connector: `ml.*` leaves of a request → observations → distributions.

It reads every record that carries `ml.model.name`, groups the leaves by (attribute, model,
version) with one stable sort, and hands each group to its distribution. A batch record has
as many rows as its longest array attribute; a scalar attribute on it applies to every row;
rows where a known feature is absent count as missing. Python loops only over the distinct
(attribute, model) groups of a request, never over values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.connectors.connector import RecordSignal
from otelml.gateway.connectors.grouping import model_groups, row_in_entry, series_of_key
from otelml.gateway.decode import Records
from otelml.gateway.decode.kinds import KIND_BOOL, KIND_DOUBLE, KIND_INT, KIND_STRING
from otelml.gateway.state.attribution import SliceEntry
from otelml.gateway.state.keys import ModelKey, SeriesKey
from otelml.gateway.state.observations import Observations, Origin
from otelml.gateway.state.samples import RequestSamples
from otelml.gateway.state.store import FeatureStore, SampleKind, overflow_metric


def _sample_kind(kind: npt.NDArray[np.int8]) -> SampleKind:
    """How to track a series first seen without a reference: by the majority of its values."""
    strings = int(np.count_nonzero(kind == KIND_STRING))
    numbers = int(np.count_nonzero((kind >= KIND_DOUBLE) & (kind <= KIND_BOOL)))
    return "categorical" if strings > numbers else "numeric"


@dataclass(frozen=True)
class _Layout:
    """Leaf columns arranged so that each (key, model group) is `column[where]`, a view."""

    kind: npt.NDArray[np.int8]
    number: npt.NDArray[np.float64]
    integer: npt.NDArray[np.int64]
    text: npt.NDArray[np.int32]
    record: npt.NDArray[np.int32]
    groups: list[tuple[int, int, Any]]  # (key code, model group, index into the columns)
    group_rows: npt.NDArray[np.int64]  # rows (batch rows included) per model group
    uniform_kind: list[int]  # per entry of `groups`: the kind of all its leaves, or -1
    all_finite: list[bool]  # per entry of `groups`: no NaN/inf among its numbers


def _summaries(
    kind_min: npt.NDArray[np.int8],
    kind_max: npt.NDArray[np.int8],
    finite: npt.NDArray[np.bool_],
) -> tuple[list[int], list[bool]]:
    uniform = np.where(kind_min == kind_max, kind_min, -1).tolist()
    return uniform, finite.tolist()


def _uniform_layout(records: Records, leaf_group: npt.NDArray[np.int64]) -> _Layout | None:
    """The common case without a sort: one model, no arrays, every record with the same keys.

    Leaves then form a (records × keys) matrix and each attribute is one of its columns.
    """
    leaves = records.leaves
    first = int(np.count_nonzero(leaves.record == leaves.record[0]))
    n = len(leaves)
    if n % first or leaves.from_array.any() or leaf_group[0] < 0:
        return None
    keys = leaves.key.reshape(n // first, first)
    if not (keys == keys[0]).all() or not (leaf_group == leaf_group[0]).all():
        return None
    if len(np.unique(keys[0])) != first:
        return None  # a key repeated within a record: let the general path handle it
    if np.any(np.diff(leaves.record.reshape(n // first, first)[:, 0]) <= 0):
        return None
    shape = (n // first, first)
    group = int(leaf_group[0])
    group_rows = np.zeros(group + 1, dtype=np.int64)
    group_rows[group] = n // first

    def by_key(column: npt.NDArray[Any]) -> npt.NDArray[Any]:
        # One transposing copy makes every attribute's values contiguous (faster kernels).
        return np.ascontiguousarray(column.reshape(shape).T)

    kind, number = by_key(leaves.kind), by_key(leaves.number)
    uniform, finite = _summaries(
        kind.min(axis=1), kind.max(axis=1), np.isfinite(number).all(axis=1)
    )
    return _Layout(
        kind=kind,
        number=number,
        integer=by_key(leaves.integer),
        text=by_key(leaves.text),
        record=by_key(leaves.record),
        groups=[(int(k), group, i) for i, k in enumerate(keys[0].tolist())],
        group_rows=group_rows,
        uniform_kind=uniform,
        all_finite=finite,
    )


def _sorted_layout(
    records: Records,
    record_group: npt.NDArray[np.int64],
    leaf_group: npt.NDArray[np.int64],
    key_series: list[SeriesKey | None],
    n_groups: int,
) -> _Layout:
    """The general case: expand batch rows, then one stable sort by (key, model group)."""
    leaves = records.leaves
    is_series = np.array([s is not None for s in key_series], dtype=bool)
    selected = np.flatnonzero(is_series[leaves.key] & (leaf_group >= 0))
    rows = np.ones(records.count, dtype=np.int64)
    if leaves.from_array[selected].any():
        # A batch record has as many rows as its longest array; its scalars repeat per row.
        array_leaves = selected[leaves.from_array[selected]]
        per_entry = np.bincount(leaves.entry[array_leaves])
        entry_record = np.zeros(len(per_entry), dtype=np.int64)
        entry_record[leaves.entry[array_leaves]] = leaves.record[array_leaves]
        np.maximum.at(rows, entry_record, per_entry)
        repeat = np.where(leaves.from_array[selected], 1, rows[leaves.record[selected]])
        selected = np.repeat(selected, repeat)
    in_group = record_group >= 0
    group_rows = np.bincount(
        record_group[in_group], weights=rows[in_group], minlength=n_groups
    ).astype(np.int64)
    return _grouped(records, selected, leaf_group[selected], n_groups, group_rows)


def _grouped(
    records: Records,
    selected: npt.NDArray[np.int64],
    group_of: npt.NDArray[np.int64],
    n_groups: int,
    group_rows: npt.NDArray[np.int64],
) -> _Layout:
    """The `selected` leaves (with their groups) sorted by (key, group): one stable sort, then
    each (key, group) run is a slice of the layout's columns."""
    leaves = records.leaves
    combined = leaves.key[selected].astype(np.int64) * n_groups + group_of
    # Few distinct codes: a 16-bit stable sort is numpy's radix sort, linear in the leaves.
    small = n_groups * len(records.keys) < 1 << 15
    order = np.argsort(combined.astype(np.int16) if small else combined, kind="stable")
    selected = selected[order]
    combined = combined[order]
    bounds = np.flatnonzero(np.diff(combined)) + 1
    starts = [0, *bounds.tolist()] if len(combined) else []
    ends = [*bounds.tolist(), len(combined)] if len(combined) else []
    kind, number = leaves.kind[selected], leaves.number[selected]
    uniform: list[int] = []
    finite: list[bool] = []
    if starts:
        uniform, finite = _summaries(
            np.minimum.reduceat(kind, starts),
            np.maximum.reduceat(kind, starts),
            np.logical_and.reduceat(np.isfinite(number), starts),
        )
    return _Layout(
        kind=kind,
        number=number,
        integer=leaves.integer[selected],
        text=leaves.text[selected],
        record=leaves.record[selected],
        uniform_kind=uniform,
        all_finite=finite,
        groups=[
            (*divmod(int(combined[start]), n_groups), slice(start, end))
            for start, end in zip(starts, ends, strict=True)
        ],
        group_rows=group_rows,
    )


def _segment_labels(
    records: Records,
    carriers: npt.NDArray[np.int64],
    segment_value: Callable[[ModelKey, str, str], str],
    model: ModelKey,
    feature: str,
) -> tuple[list[str], npt.NDArray[np.int64]]:
    """The distinct segment labels of the `carriers` leaves, and each leaf's index among them
    (-1: a value that names no segment). Loops over leaves of one feature only."""
    leaves = records.leaves
    labels: list[str] = []
    label_index: dict[str, int] = {}
    code_of_leaf = np.full(len(carriers), -1, dtype=np.int64)
    for n, index in enumerate(carriers.tolist()):
        kind = int(leaves.kind[index])
        if kind == KIND_STRING:
            value = records.strings[int(leaves.text[index])]
        elif kind == KIND_INT:
            value = str(int(leaves.integer[index]))
        elif kind == KIND_BOOL:
            value = "true" if leaves.integer[index] else "false"
        else:
            continue
        label = segment_value(model, feature, value)
        code_of_leaf[n] = label_index.setdefault(label, len(labels))
        if code_of_leaf[n] == len(labels):
            labels.append(label)
    return labels, code_of_leaf


def _segment_layout(
    records: Records,
    record_group: npt.NDArray[np.int64],
    group: int,
    model: ModelKey,
    feature: str,
    key_series: list[SeriesKey | None],
    store: FeatureStore,
) -> tuple[_Layout, list[ModelKey]] | None:
    """One model group's leaves, row by row, grouped by (attribute, value of `feature`).

    Rows are batch rows: a scalar attribute on a batch record applies to each of its rows,
    each row belongs to the segment its `feature` value names there.
    """
    leaves = records.leaves
    segment_key = semconv.FEATURE_PREFIX + feature
    if segment_key not in records.keys:
        return None
    in_group = record_group == group
    is_series = np.array([s is not None for s in key_series], dtype=bool)
    selected = np.flatnonzero(is_series[leaves.key] & in_group[leaves.record])
    position = row_in_entry(records)
    rows = np.ones(records.count, dtype=np.int64)
    arrays = selected[leaves.from_array[selected]]
    np.maximum.at(rows, leaves.record[arrays], position[arrays] + 1)
    row_start = np.cumsum(rows) - rows
    # The segment label of every row of the group's records (-1: none given).
    segment_code = records.keys.index(segment_key)
    carriers = np.flatnonzero(
        (leaves.key == segment_code)
        & in_group[leaves.record]
        & (leaves.kind >= KIND_INT)
        & (leaves.kind <= KIND_STRING)
    )
    labels, code_of_leaf = _segment_labels(records, carriers, store.segment_value, model, feature)
    if not labels:
        return None
    per_record = np.full(records.count, -1, dtype=np.int64)
    scalar = ~leaves.from_array[carriers]
    per_record[leaves.record[carriers[scalar]]] = code_of_leaf[scalar]
    segment_of_row = np.repeat(per_record, rows)
    array_carriers = carriers[~scalar]
    segment_of_row[row_start[leaves.record[array_carriers]] + position[array_carriers]] = (
        code_of_leaf[~scalar]
    )
    # Expand the attribute leaves to rows, then keep those with a segment.
    repeat = np.where(leaves.from_array[selected], 1, rows[leaves.record[selected]])
    expanded = np.repeat(selected, repeat)
    within = np.arange(len(expanded)) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    record_of = leaves.record[expanded]
    row = row_start[record_of] + np.where(leaves.from_array[expanded], position[expanded], within)
    segment = segment_of_row[row]
    keep = segment >= 0
    expanded, segment = expanded[keep], segment[keep]
    group_rows = np.bincount(
        segment_of_row[(segment_of_row >= 0) & np.repeat(in_group, rows)], minlength=len(labels)
    ).astype(np.int64)
    layout = _grouped(records, expanded, segment, len(labels), group_rows)
    segmented = [ModelKey(model.model, model.version, (feature, label)) for label in labels]
    return layout, segmented


class FeaturesConnector:
    """Consumes decoded records and updates the feature store."""

    signals: frozenset[RecordSignal] = frozenset({"spans", "log_records"})

    def __init__(self, store: FeatureStore, samples: RequestSamples | None = None) -> None:
        self.store = store
        self.samples = samples  # a few recent rows per bucket, for the UI

    def consume(self, records: Records, valid: npt.NDArray[np.bool_] | None = None) -> None:
        """Update distributions from one request (`valid` masks out rejected records)."""
        leaves = records.leaves
        if records.count == 0 or len(leaves) == 0:
            return
        record_group, groups = model_groups(records)
        if valid is not None:
            record_group[~valid] = -1
        if not groups:
            return
        key_series = [series_of_key(k) for k in records.keys]
        # Only records with a feature or prediction are inferences: a model's ground-truth
        # span, or the span whose wide feature set went onto a log record, counts no missing.
        is_series = np.fromiter((s is not None for s in key_series), bool, len(key_series))
        inference = np.zeros(records.count, dtype=bool)
        inference[leaves.record[is_series[leaves.key]]] = True
        record_group[~inference] = -1
        leaf_group = record_group[leaves.record]
        layout = _uniform_layout(records, leaf_group) or _sorted_layout(
            records, record_group, leaf_group, key_series, len(groups)
        )
        origin = Origin(
            records.trace_id,
            records.span_id,
            records.time_s,
            records.context,
            records.context_keys,
        )
        self._observe_layout(layout, groups, key_series, records, origin)
        if self.samples is not None:
            self.samples.offer(records, record_group, groups, key_series, self.store)
        for group, model in enumerate(groups):
            profile = self.store.model_profile(model)
            for feature in profile.segments if profile is not None else ():
                segmented = _segment_layout(
                    records, record_group, group, model, feature, key_series, self.store
                )
                if segmented is not None:
                    self._observe_layout(*segmented, key_series, records, origin)

    def _observe_layout(
        self,
        layout: _Layout,
        models: list[ModelKey],
        key_series: list[SeriesKey | None],
        records: Records,
        origin: Origin,
    ) -> None:
        """Observe every (attribute, model) group of a layout; absent series count as missing."""
        seen: set[tuple[int, SeriesKey]] = set()
        counted: dict[int, list[SliceEntry]] = {}  # per model group, for the slices
        for position, (key_code, group, where) in enumerate(layout.groups):
            series = key_series[key_code]
            if series is None:
                continue
            kind = layout.kind[where]
            obs = Observations(
                kind=kind,
                number=layout.number[where],
                integer=layout.integer[where],
                text=layout.text[where],
                strings=records.strings,
                record=layout.record[where],
                origin=origin,
                absent=max(int(layout.group_rows[group]) - len(kind), 0),
                uniform_kind=layout.uniform_kind[position],
                all_finite=layout.all_finite[position],
            )
            seen.add((group, series))
            entry = self._observe(models[group], series, obs)
            if entry is not None:
                counted.setdefault(group, []).append(entry)
        for group, entries in counted.items():
            if models[group].segment is None:
                self.store.slices.observe(models[group], entries, records.strings, origin)
        for group, model in enumerate(models):
            for series, distribution in list(self.store.model(model).items()):
                if (group, series) not in seen:
                    rows = int(layout.group_rows[group])
                    distribution.observe(Observations.only_absent(rows))

    def _observe(self, model: ModelKey, series: SeriesKey, obs: Observations) -> SliceEntry | None:
        """Count into the distribution; returns what it counted, for the slices."""
        distribution = self.store.existing(model, series)
        if distribution is None:
            distribution = self.store.distribution(model, series, _sample_kind(obs.kind))
        if distribution is None:
            metric = overflow_metric(series, _sample_kind(obs.kind))
            self.store.budget.count_overflow(metric, obs.rows)
            return None
        binned = distribution.observe(obs)
        return None if binned is None else SliceEntry(series, len(distribution.counts), binned)
