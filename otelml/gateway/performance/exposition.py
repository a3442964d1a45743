"""How the ground-truth join describes itself: performance over the window, join counters.

Performance and the window's pair count per (model, output) — whole models, then slices in
their own `otelml_segment_*` families — then what joined, what did not and why, what was
evicted before its ground truth came, and what is still waiting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping

from otelml import semconv
from otelml.gateway.performance.metrics import Metrics
from otelml.gateway.state.families import Family, Labels, Sample
from otelml.gateway.state.keys import ModelKey, SeriesKey, series_labels

Results = Mapping[tuple[ModelKey, str], tuple[int, Metrics]]


def _labels(model: ModelKey, output: str) -> Labels:
    return series_labels(model, SeriesKey("prediction", output))


def performance_families(
    results: Results,
    matched: Counter[tuple[ModelKey, str]],
    unmatched: Counter[tuple[str, str, str, str]],
    evicted: Counter[tuple[str, str, str]],
    waiting: tuple[int, int],
) -> Iterator[Family]:
    """`waiting`: (predictions, ground truth) not joined yet."""
    for rename in (str, semconv.segment_name):
        sliced = rename is semconv.segment_name
        mine = sorted((k, v) for k, v in results.items() if (k[0].segment is not None) == sliced)
        if not mine:
            continue
        yield Family(
            rename(semconv.PERFORMANCE),
            "gauge",
            "Model performance over the window of joined ground truth.",
            [
                Sample(
                    _labels(model, output),
                    float(value),
                    ((semconv.LABEL_METRIC, metric), (semconv.LABEL_CLASS, label))
                    if label
                    else ((semconv.LABEL_METRIC, metric),),
                )
                for (model, output), (_, metrics) in mine
                for (metric, label), value in sorted(metrics.items())
            ],
        )
        yield Family(
            rename(semconv.PERFORMANCE_WINDOW_PAIRS),
            "gauge",
            "Predictions joined with ground truth in the window.",
            [Sample(_labels(model, output), pairs) for (model, output), (pairs, _) in mine],
        )
    yield Family(
        f"{semconv.GROUND_TRUTH_MATCHED}_total",
        "counter",
        "Ground truth joined with its prediction.",
        [
            Sample(_labels(model, output), count)
            for (model, output), count in sorted(matched.items())
        ],
    )
    yield Family(
        f"{semconv.GROUND_TRUTH_UNMATCHED}_total",
        "counter",
        "Ground truth not joined, by reason (duplicate, unknown_id).",
        [
            Sample(
                _labels(ModelKey(model, version), output), count, ((semconv.LABEL_REASON, reason),)
            )
            for (model, version, output, reason), count in sorted(unmatched.items())
        ],
    )
    yield Family(
        f"{semconv.GROUND_TRUTH_EVICTED}_total",
        "counter",
        "Predictions dropped before their ground truth came, by reason.",
        [
            Sample(
                ((semconv.LABEL_MODEL, model), (semconv.LABEL_MODEL_VERSION, version)),
                count,
                ((semconv.LABEL_REASON, reason),),
            )
            for (model, version, reason), count in sorted(evicted.items())
        ],
    )
    predictions, truths = waiting
    yield Family(
        semconv.GROUND_TRUTH_WAITING,
        "gauge",
        "Predictions and ground truth waiting to be joined.",
        [
            Sample((("side", "prediction"),), predictions),
            Sample((("side", "ground_truth"),), truths),
        ],
    )
