"""Which model, which series and which batch row each decoded leaf belongs to.

Shared by the connectors that read `ml.*` attributes (features, ground truth): one vectorised
pass per request, Python loops only over the distinct (model, version) pairs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.decode import Records
from otelml.gateway.decode.kinds import KIND_STRING
from otelml.gateway.state.keys import ModelKey, SeriesKey


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


def _string_per_record(records: Records, key: str) -> npt.NDArray[np.int64]:
    """Per record, the string code of a single-valued attribute; -1 where absent or not a string."""
    out = np.full(records.count, -1, dtype=np.int64)
    if key in records.keys:
        leaves = records.leaves
        code = records.keys.index(key)
        mine = np.flatnonzero((leaves.key == code) & (leaves.kind == KIND_STRING))
        out[leaves.record[mine]] = leaves.text[mine]
    return out


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


def row_in_entry(records: Records) -> npt.NDArray[np.int64]:
    """Each leaf's row: its position in its array attribute (0 for scalars)."""
    leaves = records.leaves
    entry = leaves.entry.astype(np.int64)
    if len(entry) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(entry, return_index=True, return_inverse=True)
    return np.asarray(np.where(leaves.from_array, np.arange(len(entry)) - first[inverse], 0))


def expanded_values(records: Records) -> int:
    """The observations a request expands to, before any is made: a batch record has as many
    rows as its longest array attribute, and each of its scalar leaves repeats once per row
    (one 1,000,000-element array beside 60 scalars is 61 million)."""
    leaves = records.leaves
    arrays = leaves.from_array
    if not arrays.any():
        return len(leaves)
    rows = np.ones(records.count, dtype=np.int64)
    per_entry = np.bincount(leaves.entry[arrays])
    entry_record = np.zeros(len(per_entry), dtype=np.int64)
    entry_record[leaves.entry[arrays]] = leaves.record[arrays]
    np.maximum.at(rows, entry_record, per_entry)
    # Only features and predictions repeat per row (the model name, ids… are read once).
    is_series = np.array([series_of_key(k) is not None for k in records.keys], dtype=bool)
    repeated = ~arrays & is_series[leaves.key]
    rest = len(leaves) - int(np.count_nonzero(repeated))
    return int(rest + rows[leaves.record[repeated]].sum())
