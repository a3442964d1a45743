"""Observations: the values of one (model, version, feature) in one request, as columns.

The feature connector produces them; distributions consume them. One observation is one
row of a model's input (a batch span with 32 rows gives 32 observations per feature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

# Which AnyValue member an observation arrived as.
KIND_NULL = 0  # attribute present without a value
KIND_DOUBLE = 1
KIND_INT = 2
KIND_BOOL = 3
KIND_STRING = 4
KIND_OTHER = 5  # bytes, key-value lists, nested arrays: never a valid feature value


@dataclass(frozen=True)
class Origin:
    """Per-record trace context of a request: what an exemplar points at."""

    trace_id: npt.NDArray[np.uint8]  # (records, 16); zeros where absent
    span_id: npt.NDArray[np.uint8]  # (records, 8)
    time_s: npt.NDArray[np.float64]


_NO_ORIGIN = Origin(np.zeros((0, 16), np.uint8), np.zeros((0, 8), np.uint8), np.zeros(0))


@dataclass(frozen=True)
class Observations:
    """Aligned columns, one entry per observation, plus the count of rows where it was absent.

    String values stay in the request's Arrow column (`text_source` at `text_index`) until a
    categorical distribution asks for them: numeric features never pay for string copies.
    """

    kind: npt.NDArray[np.int8]
    number: npt.NDArray[np.float64]  # double/int/bool as float; NaN for other kinds
    integer: npt.NDArray[np.int64]  # exact int_value (0 for other kinds), for categorical ints
    record: npt.NDArray[np.int64]  # which record (span/log) each observation came from
    origin: Origin  # the request's records, for exemplars
    text_source: pa.Array
    text_index: npt.NDArray[np.int64]
    absent: int = 0

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def rows(self) -> int:
        """Observations including the absent ones: the missing-rate denominator."""
        return len(self.kind) + self.absent

    def text(self, positions: npt.NDArray[np.intp]) -> pa.Array:
        """String values of the observations at `positions` (null where not a string)."""
        return self.text_source.take(pa.array(self.text_index[positions]))

    @staticmethod
    def only_absent(rows: int) -> Observations:
        empty = np.zeros(0)
        return Observations(
            kind=np.zeros(0, np.int8),
            number=empty,
            integer=np.zeros(0, np.int64),
            record=np.zeros(0, np.int64),
            origin=_NO_ORIGIN,
            text_source=pa.array([], pa.string()),
            text_index=np.zeros(0, np.int64),
            absent=rows,
        )
