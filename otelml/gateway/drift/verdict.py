"""A drift verdict: the latest evaluation of one series, as the engine keeps and exposes it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class DriftExemplar:
    """A trace from the bin that moved most, at the moment drift was detected."""

    trace_id: str
    span_id: str
    value: float
    time_s: float


@dataclass
class Verdict:
    """The latest evaluation of one series."""

    method: str
    threshold: float
    scores: dict[str, float]
    observations: int
    detected: bool | None  # None: fewer than min_samples observations in the window
    events: int = 0
    exemplar: DriftExemplar | None = None
    #: The window's counts per reference bin (not cumulative), exported so that Prometheus
    #: can sum them over replicas and compute cluster-wide scores.
    window: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
