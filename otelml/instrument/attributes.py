"""Features and predictions as `ml.*` attribute values: one row → scalars, a batch → arrays.

OpenTelemetry attribute arrays must be homogeneous (the SDK drops a mixed array whole), so
every column is normalised to one element type: bool, int, float or str, in that order of
preference; a column mixing ints and floats becomes float, anything else becomes str. A
missing value (None, NaN, pandas NA) is a None element in an array (exported as an empty
value, which the gateway counts as missing) and an absent attribute for a single row.

Accepted shapes (pandas and numpy are optional: only used when the value is one of theirs):

==================================  ==================================================
features                            meaning
==================================  ==================================================
``{"age": 41, "plan": "pro"}``      one row
``{"age": [41, 37], ...}``          a batch given by columns (one element per row)
``[{"age": 41}, {"age": 37}]``      a batch given by rows
``pandas.DataFrame``                a batch (columns = features)
``pandas.Series``                   one row (index = feature names)
``numpy 2-D array`` + names         a batch; a 1-D array + names is one row
==================================  ==================================================

Predictions: a scalar (one row), a 1-D list/array/Series (a batch), or a mapping /
DataFrame of named outputs (each a scalar or a column).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from otelml import semconv


def _exporter_encodes_none() -> bool:
    """Whether the installed OTLP encoder accepts a null array element (newer SDKs do; 1.20
    raises and drops the attribute)."""
    try:
        from opentelemetry.exporter.otlp.proto.common._internal import _encode_value
    except ImportError:
        return True
    try:
        _encode_value([None])
    except Exception:
        return False
    return True


#: False on old exporters: a missing string in a batch is then sent as "" (documented).
NONE_IN_ARRAYS = _exporter_encodes_none()
MISSING_STRING_FALLBACK = ""

Scalar: TypeAlias = bool | int | float | str
AttributeValue: TypeAlias = Scalar | Sequence[Scalar | None]


@dataclass(frozen=True)
class Columns:
    """Named columns of one record: `rows` is None for a single row (scalar values)."""

    values: dict[str, AttributeValue]
    rows: int | None


def feature_columns(features: Any, names: Sequence[str] | None = None) -> Columns:
    """Normalise any accepted features value into attribute values keyed by feature name."""
    if _is_pandas(features, "DataFrame"):
        return _from_batch_columns({str(k): features[k] for k in features.columns})
    if _is_pandas(features, "Series"):
        return _from_row({str(k): v for k, v in features.items()})
    if _is_numpy_array(features) or (
        names is not None and isinstance(features, Sequence) and not isinstance(features, str)
    ):
        return _from_positional(features, names)
    if isinstance(features, Mapping):
        values = {str(k): v for k, v in features.items()}
        if any(_is_column(v) for v in values.values()):
            return _from_batch_columns(values)
        return _from_row(values)
    if (
        isinstance(features, Sequence)
        and not isinstance(features, (str, bytes))
        and all(isinstance(row, Mapping) for row in features)
    ):
        return _from_rows(features)
    raise TypeError(
        "features must be a mapping, a list of mappings, a pandas DataFrame/Series, "
        f"or a numpy array with feature_names; got {type(features).__name__}"
    )


def prediction_columns(prediction: Any) -> Columns:
    """Normalise a prediction into attribute values keyed by output name."""
    if _is_pandas(prediction, "DataFrame"):
        return _from_batch_columns({str(k): prediction[k] for k in prediction.columns})
    if isinstance(prediction, Mapping):
        values = {str(k): v for k, v in prediction.items()}
        if any(_is_column(v) for v in values.values()):
            return _from_batch_columns(values)
        return _from_row(values)
    if _is_numpy_array(prediction) and prediction.ndim == 2:
        if prediction.shape[1] != 1:
            raise ValueError(
                f"a {prediction.shape[1]}-column prediction array needs output names: "
                "pass a mapping {output: column} or a DataFrame"
            )
        prediction = prediction[:, 0]
    if _is_column(prediction):
        return _from_batch_columns({semconv.DEFAULT_OUTPUT: prediction})
    return _from_row({semconv.DEFAULT_OUTPUT: prediction})


def ml_attributes(
    features: Columns | None,
    predictions: Columns | None,
    model: str | None,
    version: str | None,
    prediction_id: str | Sequence[str] | None = None,
) -> dict[str, AttributeValue]:
    """The `ml.*` attributes of one inference record."""
    attributes: dict[str, AttributeValue] = {}
    if model is not None:
        attributes[semconv.MODEL_NAME] = model
    if version is not None:
        attributes[semconv.MODEL_VERSION] = str(version)
    if features is not None:
        for name, value in features.values.items():
            attributes[_feature_key(name)] = value
    if predictions is not None:
        for output, value in predictions.values.items():
            attributes[_prediction_key(output)] = value
    if prediction_id is not None:
        attributes[semconv.PREDICTION_ID] = (
            prediction_id if isinstance(prediction_id, str) else [str(i) for i in prediction_id]
        )
    return attributes


@functools.lru_cache(maxsize=4096)
def _feature_key(name: str) -> str:
    return semconv.FEATURE_PREFIX + name


@functools.lru_cache(maxsize=4096)
def _prediction_key(output: str) -> str:
    return (
        semconv.PREDICTION
        if output == semconv.DEFAULT_OUTPUT
        else semconv.PREDICTION_PREFIX + output
    )


def batch_rows(*columns: Columns | None) -> int | None:
    """Rows of the batch the columns describe (None: a single row); lengths must agree."""
    rows = {c.rows for c in columns if c is not None and c.rows is not None}
    if len(rows) > 1:
        raise ValueError(f"features and predictions disagree on the number of rows: {rows}")
    return rows.pop() if rows else None


# --- shapes -------------------------------------------------------------------------------


def _from_row(values: Mapping[str, Any]) -> Columns:
    out: dict[str, AttributeValue] = {}
    for name, value in values.items():
        scalar = _scalar(value)
        if scalar is not None:
            out[name] = scalar
    return Columns(out, None)


def _from_batch_columns(values: Mapping[str, Any]) -> Columns:
    out: dict[str, AttributeValue] = {}
    rows: int | None = None
    broadcast: dict[str, Any] = {}
    for name, value in values.items():
        if not _is_column(value):
            broadcast[name] = value  # a scalar next to columns applies to every row
            continue
        column = _column(value)
        if rows is None:
            rows = len(column)
        elif len(column) != rows:
            raise ValueError(f"column {name!r} has {len(column)} rows, expected {rows}")
        out[name] = column
    for name, value in broadcast.items():
        scalar = _scalar(value)
        if scalar is not None:
            out[name] = scalar
    return Columns(out, rows)


def rows_to_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Row mappings as columns over the union of their keys (None where a row lacks one)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(str(k) for k in row))
    return {name: [row.get(name) for row in rows] for name in names}


def _from_rows(rows: Sequence[Mapping[str, Any]]) -> Columns:
    columns = rows_to_columns(rows)
    out: dict[str, AttributeValue] = {name: _column(c) for name, c in columns.items()}
    return Columns(out, len(rows))


def _from_positional(values: Any, names: Sequence[str] | None) -> Columns:
    if names is None:
        raise ValueError("features given as an array need feature_names=[...]")
    if _is_numpy_array(values):
        if values.ndim == 1:
            return _from_row(dict(zip(names, values.tolist(), strict=True)))
        if values.ndim != 2 or values.shape[1] != len(names):
            raise ValueError(f"features of shape {values.shape} do not match {len(names)} names")
        return _from_batch_columns({n: values[:, i] for i, n in enumerate(names)})
    if values and all(_is_column(row) for row in values):  # list of rows
        rows = [list(row) for row in values]
        if any(len(row) != len(names) for row in rows):
            raise ValueError(f"every row needs {len(names)} values, one per feature name")
        return _from_batch_columns({n: [row[i] for row in rows] for i, n in enumerate(names)})
    if len(values) != len(names):
        raise ValueError(f"{len(values)} values for {len(names)} feature names")
    return _from_row(dict(zip(names, values, strict=True)))


# --- values -------------------------------------------------------------------------------


def _is_pandas(value: Any, kind: str) -> bool:
    cls = type(value)
    return cls.__name__ == kind and cls.__module__.startswith("pandas")


def _is_numpy_array(value: Any) -> bool:
    return type(value).__name__ == "ndarray" and type(value).__module__ == "numpy"


_PLAIN = frozenset({bool, int, float, str, type(None)})


def _is_column(value: Any) -> bool:
    if type(value) in _PLAIN:  # the common case first: no ABC checks per value
        return False
    if isinstance(value, (str, bytes, Mapping)):
        return False
    if _is_numpy_array(value):
        return bool(value.ndim >= 1)
    return isinstance(value, (Sequence, Iterable)) and not _is_numpy_scalar(value)


def _is_numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "item")


def _scalar(value: Any) -> Scalar | None:
    """One value as an attribute scalar; None for a missing value."""
    if type(value) in _PLAIN:
        return value  # type: ignore[no-any-return]
    if _is_numpy_scalar(value):
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value  # NaN stays NaN: the gateway counts it as missing
    if isinstance(value, numbers.Real):
        return float(value)
    if _is_missing(value):
        return None
    return str(value)


def _column(value: Any) -> list[Scalar | None]:
    """A column as a homogeneous list; the fast path is numpy's own `tolist`."""
    if _is_pandas(value, "Series"):
        value = value.to_numpy(dtype=object if value.dtype.kind not in "biuf" else None)
    if _is_numpy_array(value):
        if value.dtype.kind in "biuf":
            return value.tolist()  # type: ignore[no-any-return]
        value = value.tolist()
    elements = [None if (s := _scalar(v)) is None or s != s else s for v in value]  # NaN → None
    kinds = {type(v) for v in elements if v is not None}
    if kinds == {float} or (len(kinds) > 1 and kinds <= {int, float}):
        return [math.nan if v is None else float(v) for v in elements]
    if len(kinds) > 1:
        elements = [None if v is None else str(v) for v in elements]
    if NONE_IN_ARRAYS or None not in elements:
        return elements
    # An exporter that cannot encode a null element drops the whole attribute: numbers
    # become floats (NaN = missing), strings get "" in the gap (see MISSING_STRING_FALLBACK).
    if kinds <= {int, bool}:
        return [math.nan if v is None else float(v) for v in elements]
    return [MISSING_STRING_FALLBACK if v is None else v for v in elements]


def _is_missing(value: Any) -> bool:
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # NaN, pandas NA/NaT
    except (TypeError, ValueError):
        return False
