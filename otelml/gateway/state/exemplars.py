"""One exemplar slot per bucket: a recent (trace id, span id, value, time) that landed there.

Kept as fixed numpy arrays, so updating a whole batch is a few vectorised assignments and
merging two workers' or windows' state keeps, slot by slot, the newer exemplar.

Refreshing every slot on every request would cost more than counting the values, so `offer`
refreshes at most every `refresh_s` seconds — except when a bucket without an exemplar gets its
first value, which is always recorded. Either way an exemplar is a real observation of its
bucket, at most `refresh_s` older than the newest one.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from otelml.gateway.state.observations import Origin


class Exemplars:
    """Exemplar slots for `size` buckets."""

    __slots__ = ("_next_refresh", "span_id", "time_s", "trace_id", "value")

    #: Seconds between refreshes of already-filled slots (class-wide; tests set it to 0).
    refresh_s = 0.25

    def __init__(self, size: int) -> None:
        self._next_refresh = 0.0
        self.trace_id = np.zeros((size, 16), dtype=np.uint8)
        self.span_id = np.zeros((size, 8), dtype=np.uint8)
        self.value = np.zeros(size, dtype=np.float64)
        self.time_s = np.zeros(size, dtype=np.float64)  # 0 = empty slot

    def __len__(self) -> int:
        return len(self.value)

    def offer(
        self,
        bucket: npt.NDArray[np.intp],
        value: npt.NDArray[np.float64],
        record: npt.NDArray[np.integer[Any]],
        origin: Origin,
        fills_empty_bucket: bool,
    ) -> None:
        """Record the batch if a refresh is due or it puts a first value into some bucket."""
        now = time.monotonic()
        if fills_empty_bucket or now >= self._next_refresh:
            self._next_refresh = now + self.refresh_s
            self.record(bucket, value, record, origin)

    def due(self) -> bool:
        """Whether a refresh is due now (and, if so, the next one starts counting)."""
        now = time.monotonic()
        if now < self._next_refresh:
            return False
        self._next_refresh = now + self.refresh_s
        return True

    def record(
        self,
        bucket: npt.NDArray[np.intp],
        value: npt.NDArray[np.float64],
        record: npt.NDArray[np.integer[Any]],
        origin: Origin,
    ) -> None:
        """Keep, per bucket, the batch's last observation — when it carries a trace id.

        Only the winning observations' ids are gathered. A bucket whose last observation has
        no trace id keeps its previous exemplar: one that opens no trace is worse than none.
        """
        if len(bucket) == 0:
            return
        last = np.full(len(self.value), -1, dtype=np.intp)
        # Plain 1-d integer assignment writes in order, so the last index of each bucket wins.
        last[bucket] = np.arange(len(bucket))
        slots = np.flatnonzero(last >= 0)
        source = last[slots]
        rows = record[source]
        trace_id = origin.trace_id[rows]
        has_trace = trace_id.any(axis=1)
        if not has_trace.all():
            slots, source, rows, trace_id = (
                slots[has_trace],
                source[has_trace],
                rows[has_trace],
                trace_id[has_trace],
            )
        self.trace_id[slots] = trace_id
        self.span_id[slots] = origin.span_id[rows]
        self.value[slots] = value[source]
        self.time_s[slots] = origin.time_s[rows]

    def merge(self, other: Exemplars) -> None:
        """Slot-wise: keep whichever exemplar is newer."""
        newer = other.time_s > self.time_s
        self.trace_id[newer] = other.trace_id[newer]
        self.span_id[newer] = other.span_id[newer]
        self.value[newer] = other.value[newer]
        self.time_s[newer] = other.time_s[newer]
