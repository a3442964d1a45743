"""Predictions and ground truth out of decoded records, into the join.

Prediction ids: `ml.prediction.id` per row (an array on a batch record, one id per row; a
scalar id on a batch record becomes `<id>:<row>`), or by default `<trace_id>:<row>`. Ground
truth carries the same id on a later span or log record, with `ml.ground_truth` (the output
"prediction") or `ml.ground_truth.<output>`.
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.connectors.connector import RecordSignal
from otelml.gateway.connectors.grouping import model_groups, row_in_entry, series_of_key
from otelml.gateway.decode import Records
from otelml.gateway.decode.kinds import KIND_BOOL, KIND_DOUBLE, KIND_INT, KIND_STRING
from otelml.gateway.performance.tracker import GroundTruthTracker, Value
from otelml.gateway.state.keys import ModelKey
from otelml.gateway.state.store import FeatureStore


def truth_output(key: str) -> str | None:
    if key == semconv.GROUND_TRUTH:
        return semconv.DEFAULT_OUTPUT
    if key.startswith(semconv.GROUND_TRUTH_PREFIX):
        return key[len(semconv.GROUND_TRUTH_PREFIX) :] or None
    return None


class GroundTruthConnector:
    """Predictions and ground truth (spans or log records) into the join."""

    signals: frozenset[RecordSignal] = frozenset({"spans", "log_records"})

    def __init__(self, tracker: GroundTruthTracker, store: FeatureStore | None = None) -> None:
        self.tracker = tracker
        self.store = store  # for the segments of segmented models

    def consume(self, records: Records, valid: npt.NDArray[np.bool_] | None = None) -> None:
        leaves = records.leaves
        if len(leaves) == 0:
            return
        predictions = {
            code: s.name
            for code, key in enumerate(records.keys)
            if (s := series_of_key(key)) is not None and s.role == "prediction"
        }
        truths = {
            code: output
            for code, key in enumerate(records.keys)
            if (output := truth_output(key)) is not None
        }
        if not predictions and not truths:
            return
        record_group, groups = model_groups(records)
        if valid is not None:
            record_group[~valid] = -1
        enabled = [self.tracker.enabled(g) for g in groups]
        if not truths and not any(enabled):
            return
        rows = row_in_entry(records)
        ids = _ids(records, rows)
        segments_of = self._segments(records, rows, record_group, groups)
        now = time.time()
        for index in range(len(leaves)):
            key = int(leaves.key[index])
            record = int(leaves.record[index])
            value = _value(records, index)
            if value is None or (valid is not None and not valid[record]):
                continue
            group = int(record_group[record])
            prediction_id = ids(record, int(rows[index]))
            if key in predictions and group >= 0 and enabled[group]:
                self.tracker.add_prediction(
                    prediction_id,
                    predictions[key],
                    groups[group],
                    value,
                    now,
                    segments_of(group, record, int(rows[index])),
                )
            elif key in truths:
                model: ModelKey | None = groups[group] if group >= 0 else None
                self.tracker.add_truth(prediction_id, truths[key], value, now, model)

    def _segments(  # type: ignore[no-untyped-def]
        self,
        records: Records,
        rows: npt.NDArray[np.int64],
        record_group: npt.NDArray[np.int64],
        groups: list[ModelKey],
    ):
        """A function (group, record, row) → the (feature, value) slices of that row."""
        store = self.store
        configured = {
            g: profile.segments
            for g, model in enumerate(groups)
            if store is not None and (profile := store.model_profile(model)) and profile.segments
        }
        by_row: dict[tuple[int, int], list[tuple[str, str]]] = {}
        by_record: dict[int, list[tuple[str, str]]] = {}
        if configured and store is not None:
            leaves = records.leaves
            wanted = {
                records.keys.index(semconv.FEATURE_PREFIX + f): f
                for features in configured.values()
                for f in features
                if semconv.FEATURE_PREFIX + f in records.keys
            }
            for index in np.flatnonzero(np.isin(leaves.key, list(wanted))).tolist():
                record = int(leaves.record[index])
                group = int(record_group[record])
                value = _value(records, index)
                if group < 0 or group not in configured or not isinstance(value, str):
                    continue
                feature = wanted[int(leaves.key[index])]
                label = store.segment_value(groups[group], feature, value)
                if leaves.from_array[index]:
                    by_row.setdefault((record, int(rows[index])), []).append((feature, label))
                else:
                    by_record.setdefault(record, []).append((feature, label))

        def segments(group: int, record: int, row: int) -> tuple[tuple[str, str], ...]:
            if group not in configured:
                return ()
            return tuple(by_row.get((record, row), by_record.get(record, [])))

        return segments


def _ids(records: Records, rows: npt.NDArray[np.int64]):  # type: ignore[no-untyped-def]
    """A function (record, row) → prediction id."""
    leaves = records.leaves
    explicit: dict[tuple[int, int], str] = {}
    scalar: dict[int, str] = {}
    if semconv.PREDICTION_ID in records.keys:
        code = records.keys.index(semconv.PREDICTION_ID)
        for index in np.flatnonzero((leaves.key == code) & (leaves.kind == KIND_STRING)).tolist():
            text = records.strings[int(leaves.text[index])]
            record = int(leaves.record[index])
            if leaves.from_array[index]:
                explicit[(record, int(rows[index]))] = text
            else:
                scalar[record] = text
    trace_hex = records.trace_id.tobytes().hex()
    batches = set(np.unique(leaves.record[leaves.from_array.astype(bool)]).tolist())

    def prediction_id(record: int, row: int) -> str:
        found = explicit.get((record, row))
        if found is not None:
            return found
        if record in scalar:
            return f"{scalar[record]}:{row}" if record in batches else scalar[record]
        return f"{trace_hex[32 * record : 32 * record + 32]}:{row}"

    return prediction_id


def _value(records: Records, index: int) -> Value | None:
    leaves = records.leaves
    kind = int(leaves.kind[index])
    if kind == KIND_DOUBLE:
        number = float(leaves.number[index])
        return number if np.isfinite(number) else None
    if kind == KIND_INT:
        return str(int(leaves.integer[index]))
    if kind == KIND_BOOL:
        return "true" if leaves.integer[index] else "false"
    if kind == KIND_STRING:
        return records.strings[int(leaves.text[index])]
    return None
