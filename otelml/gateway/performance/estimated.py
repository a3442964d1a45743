"""The label-free performance of each calibrated probability output, window by window.

Fed by the drift engine with each step's window of a prediction output's bucket counts (the
same window its drift verdict uses); exposed as `otelml_performance_estimated{output,
metric}` with its standard error beside it, next to the realized `otelml_performance` that
the ground-truth join computes once labels arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.performance.estimation import estimate
from otelml.gateway.state.families import Family, Sample
from otelml.gateway.state.keys import ModelKey, SeriesKey, series_labels
from otelml.profile import Calibration, NumericProfile

Estimate = dict[str, tuple[float, float]]


def positive_buckets(output: NumericProfile, threshold: float) -> npt.NDArray[np.bool_]:
    """Buckets above the threshold edge (bucket i holds edges[i-1] < p <= edges[i])."""
    edge = output.edges.index(threshold)
    return np.arange(len(output.counts)) > edge


@dataclass
class EstimatedPerformance:
    """The latest estimate per (model, output)."""

    latest: dict[tuple[ModelKey, str], Estimate] = field(default_factory=dict)

    def update(
        self,
        model: ModelKey,
        output: NumericProfile,
        calibration: Calibration,
        window: npt.NDArray[np.int64],
    ) -> None:
        if len(window) != len(calibration.positive_rate) or window.sum() == 0:
            self.latest.pop((model, output.name), None)
            return
        self.latest[(model, output.name)] = estimate(
            window, calibration.positive_rate, positive_buckets(output, calibration.threshold)
        )

    def collect(self) -> Iterator[Family]:
        if not self.latest:
            return
        rows = [
            (series_labels(model, SeriesKey("prediction", output)), metric, value)
            for (model, output), metrics in sorted(self.latest.items())
            for metric, value in metrics.items()
            if np.isfinite(value[0])
        ]
        for name, index, text in (
            (
                semconv.PERFORMANCE_ESTIMATED,
                0,
                "Performance estimated from calibrated "
                "confidence alone (CBPE) over the drift window.",
            ),
            (
                semconv.PERFORMANCE_ESTIMATED_STDERR,
                1,
                "Standard error of the estimate (sampling of the window's labels).",
            ),
        ):
            yield Family(
                name,
                "gauge",
                text,
                [
                    Sample((*labels, (semconv.LABEL_METRIC, metric)), value[index])
                    for labels, metric, value in rows
                ],
            )
