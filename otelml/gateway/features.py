"""The features connector: columnar `ml.*` attributes → observations → distributions.

It reads every record that carries `ml.model.name`, expands array values (one element per
batch row; a scalar on a batch record applies to every row), groups the leaves by (model,
version, attribute) with one sort, and hands each group to its distribution. Rows where a
known feature is absent count as missing. Nothing here loops over attributes in Python: only
over the distinct (model, attribute) groups of a request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelml import semconv
from otelml.gateway.decode import Records
from otelml.gateway.observations import (
    KIND_BOOL,
    KIND_DOUBLE,
    KIND_INT,
    KIND_OTHER,
    KIND_STRING,
    Observations,
    Origin,
)
from otelml.gateway.store import FeatureStore, ModelKey, SampleKind, SeriesKey, overflow_metric

_KIND_ARRAY = 6  # an entry whose leaves are its array elements


@dataclass(frozen=True)
class _Leaves:
    """Scalar values after array expansion, aligned column by column."""

    entry: npt.NDArray[np.int64]  # the attribute entry each leaf came from
    kind: npt.NDArray[np.int8]
    number: npt.NDArray[np.float64]
    integer: npt.NDArray[np.int64]
    text: pa.Array  # strings, addressed through text_index
    text_index: npt.NDArray[np.int64]
    from_array: npt.NDArray[np.bool_] | None  # None: no array values in this request


def _scalar_columns(
    values: pa.StructArray,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64], npt.NDArray[np.int64], pa.Array]:
    """Kind, number, exact integer and string columns of AnyValue-shaped structs."""
    fields = {values.type.field(i).name: f for i, f in enumerate(values.flatten())}
    kind = np.zeros(len(values), dtype=np.int8)
    number = np.full(len(values), np.nan)
    integer = np.zeros(len(values), dtype=np.int64)
    for name in ("kvlist_value", "bytes_value", "array_value"):
        other = fields[name]
        if other.null_count < len(other):
            kind[_valid(other)] = KIND_OTHER if name != "array_value" else _KIND_ARRAY
    string = fields["string_value"]
    if string.null_count < len(string):
        kind[_valid(string)] = KIND_STRING
    boolean = fields["bool_value"]
    if boolean.null_count < len(boolean):
        mask = _valid(boolean)
        kind[mask] = KIND_BOOL
        number[mask] = np.asarray(pc.fill_null(boolean, False).to_numpy(zero_copy_only=False))[mask]
    ints = fields["int_value"]
    if ints.null_count < len(ints):
        mask = _valid(ints)
        kind[mask] = KIND_INT
        exact = np.asarray(pc.fill_null(ints, 0).to_numpy(), dtype=np.int64)
        integer[mask] = exact[mask]
        number[mask] = exact[mask].astype(np.float64)
    doubles = fields["double_value"]
    if doubles.null_count < len(doubles):
        mask = _valid(doubles)
        kind[mask] = KIND_DOUBLE
        number[mask] = np.asarray(pc.fill_null(doubles, np.nan).to_numpy(), dtype=np.float64)[mask]
    return kind, number, integer, string


def _valid(array: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _leaves(values: pa.StructArray, selected: npt.NDArray[np.int64]) -> _Leaves:
    """Leaves of the selected entries: scalars as they are, arrays expanded element by element."""
    kind, number, integer, text = _scalar_columns(values)
    is_array = kind[selected] == _KIND_ARRAY
    if not is_array.any():
        return _Leaves(
            selected, kind[selected], number[selected], integer[selected], text, selected, None
        )
    scalar_entries = selected[~is_array]
    array_entries = selected[is_array]
    lists = values.field("array_value").field("values").take(pa.array(array_entries))
    elements = lists.flatten()
    parents = array_entries[np.asarray(lists.value_parent_indices(), dtype=np.int64)]
    e_kind, e_number, e_integer, e_text = _scalar_columns(elements)
    e_kind[e_kind == _KIND_ARRAY] = KIND_OTHER  # arrays of arrays are not feature values
    n = len(scalar_entries) + len(parents)
    return _Leaves(
        entry=np.concatenate([scalar_entries, parents]),
        kind=np.concatenate([kind[scalar_entries], e_kind]),
        number=np.concatenate([number[scalar_entries], e_number]),
        integer=np.concatenate([integer[scalar_entries], e_integer]),
        text=pa.concat_arrays([text.take(pa.array(scalar_entries)), e_text]),
        text_index=np.arange(n, dtype=np.int64),
        from_array=np.arange(n) >= len(scalar_entries),
    )


def _series_of_key(key: str) -> SeriesKey | None:
    if key.startswith(semconv.FEATURE_PREFIX):
        name = key[len(semconv.FEATURE_PREFIX) :]
        return SeriesKey("feature", name) if name else None
    if key == semconv.PREDICTION:
        return SeriesKey("prediction", semconv.DEFAULT_OUTPUT)
    if key.startswith(semconv.PREDICTION_PREFIX) and key != semconv.PREDICTION_ID:
        return SeriesKey("prediction", key[len(semconv.PREDICTION_PREFIX) :])
    return None


def _sample_kind(kind: npt.NDArray[np.int8]) -> SampleKind:
    """How to track a series seen for the first time without a reference: by its values."""
    strings = int(np.count_nonzero(kind == KIND_STRING))
    numbers = int(
        np.count_nonzero((kind == KIND_DOUBLE) | (kind == KIND_INT) | (kind == KIND_BOOL))
    )
    return "categorical" if strings > numbers else "numeric"


class FeaturesConnector:
    """Consumes decoded records, updates the feature store; counts what it saw."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store

    def consume(self, records: Records, valid: npt.NDArray[np.bool_] | None = None) -> int:
        """Update distributions from one request; returns the number of observations used.

        `valid` masks out records the receiver rejected.
        """
        if records.count == 0 or len(records.attr_record) == 0:
            return 0
        key_series = [_series_of_key(k) for k in records.keys]
        model_key = _index_of(records.keys, semconv.MODEL_NAME)
        if model_key is None:
            return 0
        record_group, groups = self._model_groups(records, model_key)
        if valid is not None:
            record_group[~valid] = -1
        is_series = np.array([s is not None for s in key_series], dtype=bool)
        selected = np.flatnonzero(
            is_series[records.attr_key] & (record_group[records.attr_record] >= 0)
        )
        if len(selected) == 0 and not groups:
            return 0
        leaves = _leaves(records.attr_values, selected) if len(selected) else None
        used = 0
        # Rows per record: a batch record has as many rows as its longest array.
        rows = np.ones(records.count, dtype=np.int64)
        leaf_record = np.zeros(0, dtype=np.int64)
        leaf_index = np.zeros(0, dtype=np.int64)
        if leaves is not None:
            leaf_record = records.attr_record[leaves.entry]
            leaf_index = np.arange(len(leaves.entry), dtype=np.int64)
            if leaves.from_array is not None:
                array_leaf = np.flatnonzero(leaves.from_array)
                per_entry = np.bincount(
                    leaves.entry[array_leaf], minlength=len(records.attr_record)
                )
                np.maximum.at(rows, records.attr_record, per_entry)
                # A scalar on a batch record applies to every row of it.
                repeat = np.where(leaves.from_array, 1, rows[leaf_record])
                leaf_index = np.repeat(leaf_index, repeat)
        group_rows = np.bincount(
            record_group[record_group >= 0], weights=rows[record_group >= 0], minlength=len(groups)
        ).astype(np.int64)
        seen: set[tuple[int, SeriesKey]] = set()
        origin = Origin(records.trace_id, records.span_id, records.time_s)
        if leaves is not None and len(leaf_index):
            group_of_leaf = record_group[leaf_record[leaf_index]]
            key_of_leaf = records.attr_key[leaves.entry[leaf_index]]
            combined = key_of_leaf * len(groups) + group_of_leaf
            order = np.argsort(combined, kind="stable")
            sorted_combined = combined[order]
            starts = np.flatnonzero(np.r_[True, sorted_combined[1:] != sorted_combined[:-1]])
            ends = np.r_[starts[1:], len(order)]
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                code = int(sorted_combined[start])
                key_code, group = divmod(code, len(groups))
                series = key_series[key_code]
                assert series is not None
                positions = leaf_index[order[start:end]]
                obs = self._observations(origin, leaves, positions, leaf_record)
                obs = _with_absent(obs, int(group_rows[group]) - len(positions))
                seen.add((group, series))
                used += self._observe(groups[group], series, obs)
        for group, model in enumerate(groups):
            for series, distribution in list(self.store.model(model).items()):
                if (group, series) not in seen:
                    distribution.observe(Observations.only_absent(int(group_rows[group])))
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

    @staticmethod
    def _observations(
        origin: Origin,
        leaves: _Leaves,
        positions: npt.NDArray[np.int64],
        leaf_record: npt.NDArray[np.int64],
    ) -> Observations:
        record = leaf_record[positions]
        return Observations(
            kind=leaves.kind[positions],
            number=leaves.number[positions],
            integer=leaves.integer[positions],
            record=record,
            origin=origin,
            text_source=leaves.text,
            text_index=leaves.text_index[positions],
        )

    @staticmethod
    def _model_groups(
        records: Records, model_key: int
    ) -> tuple[npt.NDArray[np.int64], list[ModelKey]]:
        """Per record, the index of its (model, version) in the returned list, or -1."""
        record_group = np.full(records.count, -1, dtype=np.int64)
        names = _string_per_record(records, model_key)
        version_key = _index_of(records.keys, semconv.MODEL_VERSION)
        versions = (
            _string_per_record(records, version_key)
            if version_key is not None
            else pa.nulls(records.count, pa.string())
        )
        has_model = np.asarray(names.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if not has_model.any():
            return record_group, []
        pairs = pa.StructArray.from_arrays(
            [names, pc.fill_null(versions, "")], names=["model", "version"]
        ).filter(pa.array(has_model))
        encoded = pc.dictionary_encode(
            pc.binary_join_element_wise(pairs.field("model"), pairs.field("version"), "\x00")
        )
        groups = [ModelKey(*pair.split("\x00", 1)) for pair in encoded.dictionary.to_pylist()]
        record_group[has_model] = np.asarray(encoded.indices.to_numpy(), dtype=np.int64)
        return record_group, groups


def _with_absent(obs: Observations, absent: int) -> Observations:
    if absent <= 0:
        return obs
    return Observations(
        kind=obs.kind,
        number=obs.number,
        integer=obs.integer,
        record=obs.record,
        origin=obs.origin,
        text_source=obs.text_source,
        text_index=obs.text_index,
        absent=absent,
    )


def _index_of(keys: list[str], key: str) -> int | None:
    try:
        return keys.index(key)
    except ValueError:
        return None


def _string_per_record(records: Records, key_code: int) -> pa.Array:
    """The string value of one attribute key per record (null where absent or not a string)."""
    entries = np.flatnonzero(records.attr_key == key_code)
    strings = records.attr_values.field("string_value").take(pa.array(entries))
    index = np.full(records.count, -1, dtype=np.int64)
    index[records.attr_record[entries]] = np.arange(len(entries))
    taken = pa.array(np.where(index >= 0, index, 0), pa.int64())
    mask = pa.array(index < 0)
    return (
        pc.if_else(mask, pa.nulls(records.count, pa.string()), strings.take(taken))
        if len(entries)
        else pa.nulls(records.count, pa.string())
    )


__all__ = ["FeaturesConnector"]
