"""The features connector: `ml.*` leaves of a request → observations → distributions.

It reads every record that carries `ml.model.name`, groups the leaves by (attribute, model,
version) with one stable sort, and hands each group to its distribution. A batch record has
as many rows as its longest array attribute; a scalar attribute on it applies to every row;
rows where a known feature is absent count as missing. Python loops only over the distinct
(attribute, model) groups of a request, never over values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.decode import Records
from otelml.gateway.observations import (
    KIND_BOOL,
    KIND_DOUBLE,
    KIND_STRING,
    Observations,
    Origin,
)
from otelml.gateway.store import FeatureStore, ModelKey, SampleKind, SeriesKey, overflow_metric


def series_of_key(key: str) -> SeriesKey | None:
    """The feature or prediction output an attribute key names; None for other `ml.*` keys."""
    if key.startswith(semconv.FEATURE_PREFIX):
        name = key[len(semconv.FEATURE_PREFIX) :]
        return SeriesKey("feature", name) if name else None
    if key == semconv.PREDICTION:
        return SeriesKey("prediction", semconv.DEFAULT_OUTPUT)
    if key.startswith(semconv.PREDICTION_PREFIX) and key != semconv.PREDICTION_ID:
        return SeriesKey("prediction", key[len(semconv.PREDICTION_PREFIX) :])
    return None


def _sample_kind(kind: npt.NDArray[np.int8]) -> SampleKind:
    """How to track a series first seen without a reference: by the majority of its values."""
    strings = int(np.count_nonzero(kind == KIND_STRING))
    numbers = int(np.count_nonzero((kind >= KIND_DOUBLE) & (kind <= KIND_BOOL)))
    return "categorical" if strings > numbers else "numeric"


def _string_per_record(records: Records, key: str) -> npt.NDArray[np.int64]:
    """Per record, the string code of a single-valued attribute; -1 where absent or not a string."""
    out = np.full(records.count, -1, dtype=np.int64)
    if key in records.keys:
        leaves = records.leaves
        code = records.keys.index(key)
        mine = np.flatnonzero((leaves.key == code) & (leaves.kind == KIND_STRING))
        out[leaves.record[mine]] = leaves.text[mine]
    return out


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
    combined = leaves.key[selected].astype(np.int64) * n_groups + leaf_group[selected]
    # Few distinct codes: a 16-bit stable sort is numpy's radix sort, linear in the leaves.
    sortable = combined.astype(np.int16) if n_groups * len(key_series) < 1 << 15 else combined
    order = np.argsort(sortable, kind="stable")
    selected = selected[order]
    combined = combined[order]
    bounds = np.flatnonzero(np.diff(combined)) + 1
    starts = [0, *bounds.tolist()] if len(combined) else []
    ends = [*bounds.tolist(), len(combined)] if len(combined) else []
    kind, number = leaves.kind[selected], leaves.number[selected]
    if len(starts):
        uniform, finite = _summaries(
            np.minimum.reduceat(kind, starts),
            np.maximum.reduceat(kind, starts),
            np.logical_and.reduceat(np.isfinite(number), starts),
        )
    else:
        uniform, finite = [], []
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


class FeaturesConnector:
    """Consumes decoded records and updates the feature store."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store

    def consume(self, records: Records, valid: npt.NDArray[np.bool_] | None = None) -> int:
        """Update distributions from one request; returns the observations used.

        `valid` masks out records the receiver rejected.
        """
        leaves = records.leaves
        if records.count == 0 or len(leaves) == 0:
            return 0
        record_group, groups = model_groups(records)
        if valid is not None:
            record_group[~valid] = -1
        if not groups:
            return 0
        key_series = [series_of_key(k) for k in records.keys]
        leaf_group = record_group[leaves.record]
        layout = _uniform_layout(records, leaf_group) or _sorted_layout(
            records, record_group, leaf_group, key_series, len(groups)
        )
        origin = Origin(records.trace_id, records.span_id, records.time_s)
        seen: set[tuple[int, SeriesKey]] = set()
        used = 0
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
            used += self._observe(groups[group], series, obs)
        for group, model in enumerate(groups):
            for series, distribution in list(self.store.model(model).items()):
                if (group, series) not in seen:
                    rows = int(layout.group_rows[group])
                    distribution.observe(Observations.only_absent(rows))
        return used

    def _observe(self, model: ModelKey, series: SeriesKey, obs: Observations) -> int:
        distribution = self.store.existing(model, series)
        if distribution is None:
            distribution = self.store.distribution(model, series, _sample_kind(obs.kind))
        if distribution is None:
            metric = overflow_metric(series, _sample_kind(obs.kind))
            self.store.budget.count_overflow(metric, obs.rows)
            return 0
        distribution.observe(obs)
        return len(obs)


def model_groups(records: Records) -> tuple[npt.NDArray[np.int64], list[ModelKey]]:
    """Per record, the index of its (model, version) in the returned list, or -1."""
    model = _string_per_record(records, semconv.MODEL_NAME)
    has_model = model >= 0
    if not has_model.any():
        return np.full(records.count, -1, dtype=np.int64), []
    version = _string_per_record(records, semconv.MODEL_VERSION)
    pair = model * (len(records.strings) + 1) + (version + 1)
    codes, inverse = np.unique(pair[has_model], return_inverse=True)
    record_group = np.full(records.count, -1, dtype=np.int64)
    record_group[has_model] = inverse
    strings = records.strings
    groups = []
    for code in codes.tolist():
        model_code, version_code = divmod(code, len(strings) + 1)
        version_name = strings[version_code - 1] if version_code else ""
        groups.append(ModelKey(strings[model_code], version_name))
    return record_group, groups
