"""Observations: the values of one (model, version, feature) in one request, as columns.

The feature connector produces them; distributions consume them. One observation is one
row of a model's input (a batch span with 32 rows gives 32 observations per feature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Origin:
    """Per-record trace context of a request: what an exemplar points at."""

    trace_id: npt.NDArray[np.uint8]  # (records, 16); zeros where absent
    span_id: npt.NDArray[np.uint8]  # (records, 8)
    time_s: npt.NDArray[np.float64]
    #: Per record, the string code (into the request's strings) of each context key; -1 absent.
    context: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    context_keys: tuple[str, ...] = ()


class Binned(NamedTuple):
    """What a distribution counted of some observations: the bucket (or category slot) of each
    usable one, the record it came from and its value; what drift attribution re-slices."""

    bucket: npt.NDArray[np.intp]
    record: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]


_NO_ORIGIN = Origin(np.zeros((0, 16), np.uint8), np.zeros((0, 8), np.uint8), np.zeros(0))


@dataclass(frozen=True)
class Observations:
    """Aligned columns, one entry per observation, plus the count of rows where it was absent."""

    kind: npt.NDArray[np.int8]
    number: npt.NDArray[np.float64]  # double/int/bool as float (NaN/0 for other kinds)
    integer: npt.NDArray[np.int64]  # exact int_value, for categorical ints
    text: npt.NDArray[np.int32]  # index into `strings`; -1 where not a string
    strings: list[str]
    record: npt.NDArray[np.int32]  # which record (span/log) each observation came from
    origin: Origin  # the request's records, for exemplars
    absent: int = 0
    #: Set by the connector when it knows (one vectorised pass per request): every
    #: observation has this kind (-1: mixed or unknown) / every number is finite.
    uniform_kind: int = -1
    all_finite: bool = False

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def rows(self) -> int:
        """Observations including the absent ones: the missing-rate denominator."""
        return len(self.kind) + self.absent

    @staticmethod
    def only_absent(rows: int) -> Observations:
        return Observations(
            kind=np.zeros(0, np.int8),
            number=np.zeros(0),
            integer=np.zeros(0, np.int64),
            text=np.zeros(0, np.int32),
            strings=[],
            record=np.zeros(0, np.int32),
            origin=_NO_ORIGIN,
            absent=rows,
        )
