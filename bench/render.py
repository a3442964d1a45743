"""/metrics render time for ~10k series: the hand-written exposition vs prometheus_client.

Both render the same numpy state on every scrape: ours formats lines directly; the
prometheus_client side is a custom collector (the documented pattern for state kept outside
the client) that builds metric families from the same arrays, then `generate_latest`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest as generate_text
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Exemplar

from bench.timing import median_time
from otelml import semconv
from otelml.gateway.decode.kinds import KIND_DOUBLE
from otelml.gateway.exporters.prometheus import render
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.state.distributions import NumericDistribution
from otelml.gateway.state.families import go_float
from otelml.gateway.state.keys import ModelKey, SeriesKey
from otelml.gateway.state.observations import Observations, Origin


def build_state(features: int = 182, seed: int = 0) -> GatewayState:
    """Default-bucket histograms (55 series each): 182 features ≈ 10k series, exemplars set."""
    rng = np.random.default_rng(seed)
    state = GatewayState.create(max_series=1_000_000)
    n = 4096
    origin = Origin(
        rng.integers(0, 256, (n, 16), dtype=np.uint8),
        rng.integers(0, 256, (n, 8), dtype=np.uint8),
        np.full(n, 1.7e9),
    )
    for f in range(features):
        model = ModelKey(f"model-{f // 20}", "1")
        dist = state.store.distribution(model, SeriesKey("feature", f"f{f:03d}"), "numeric")
        assert isinstance(dist, NumericDistribution)
        dist.observe(
            Observations(
                kind=np.full(n, KIND_DOUBLE, np.int8),
                number=rng.normal(0, 10 ** rng.uniform(-1, 4), n),
                integer=np.zeros(n, np.int64),
                text=np.full(n, -1, np.int32),
                strings=[],
                record=np.arange(n, dtype=np.int32),
                origin=origin,
            )
        )
    return state


class StateCollector:
    """prometheus_client custom collector over the same state (the alternative we measure)."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    def collect(self) -> Iterator[HistogramMetricFamily | CounterMetricFamily]:
        labels = ["model", "model_version", "feature"]
        histogram = HistogramMetricFamily(semconv.FEATURE_VALUE, "Feature values.", labels=labels)
        missing = CounterMetricFamily(semconv.FEATURE_MISSING, "Missing.", labels=labels)
        invalid = CounterMetricFamily(
            semconv.FEATURE_INVALID, "Invalid.", labels=[*labels, "reason"]
        )
        for model, series, dist in self.state.store.items():
            assert isinstance(dist, NumericDistribution)
            values = [model.model, model.version, series.name]
            cumulative = np.cumsum(dist.counts).tolist()
            les = [go_float(e) for e in dist.edges.tolist()] + ["+Inf"]
            ex = dist.exemplars
            buckets = []
            for i, (le, count) in enumerate(zip(les, cumulative, strict=True)):
                if ex.time_s[i] > 0:
                    exemplar = Exemplar(
                        {
                            "trace_id": ex.trace_id[i].tobytes().hex(),
                            "span_id": ex.span_id[i].tobytes().hex(),
                        },
                        float(ex.value[i]),
                        float(ex.time_s[i]),
                    )
                    buckets.append((le, count, exemplar))
                else:
                    buckets.append((le, count))
            histogram.add_metric(values, buckets, None if dist.has_negative_buckets else dist.sum)
            missing.add_metric(values, dist.missing)
            for reason, count in zip(semconv.INVALID_REASONS, dist.invalid.tolist(), strict=True):
                invalid.add_metric([*values, reason], count)
        yield histogram
        yield missing
        yield invalid


def run() -> dict[str, float]:
    state = build_state()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state))  # type: ignore[arg-type]
    text = render(state.families(), openmetrics=False)
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return {
        "series": series,
        "ours_text_s": median_time(lambda: render(state.families(), openmetrics=False)),
        "ours_openmetrics_s": median_time(lambda: render(state.families(), openmetrics=True)),
        "client_text_s": median_time(lambda: generate_text(registry)),
        "client_openmetrics_s": median_time(lambda: generate_openmetrics(registry)),
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:22s} {value:.4f}")
