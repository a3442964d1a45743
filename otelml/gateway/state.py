"""Everything the gateway knows, in one object: what /metrics, /api and the UI all read."""

from __future__ import annotations

from dataclasses import dataclass, field

from otelml.gateway.budget import SeriesBudget
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.exporters.otlp import ExporterStats
from otelml.gateway.history import History
from otelml.gateway.performance.tracker import GroundTruthTracker
from otelml.gateway.processors.redaction import Redactor
from otelml.gateway.samples import RequestSamples
from otelml.gateway.selfmetrics import ReceiverStats
from otelml.gateway.spanmetrics import SpanMetrics
from otelml.gateway.store import FeatureStore, ModelProfile


@dataclass
class GatewayState:
    budget: SeriesBudget
    store: FeatureStore
    spanmetrics: SpanMetrics
    stats: ReceiverStats = field(default_factory=ReceiverStats)
    #: Drift verdicts, where the engine runs (the gateway, or the parent of its workers).
    drift: DriftEngine | None = None
    #: Predictions waiting for ground truth, and the matched pairs (models with ground_truth).
    ground_truth: GroundTruthTracker | None = None
    #: Forwarding counters and queue gauges, by exporter name.
    exporters: dict[str, ExporterStats] = field(default_factory=dict)
    #: The redaction processor, for its counters (None when redaction is off).
    redaction: Redactor | None = None
    #: A few recent rows per bucket, for the UI (None: not kept).
    samples: RequestSamples | None = None
    #: Past verdicts and performance, for the UI (kept where the drift engine runs).
    history: History | None = None

    @classmethod
    def create(
        cls,
        max_series: int = 10_000,
        models: list[ModelProfile] | None = None,
        max_categories: int = 20,
    ) -> GatewayState:
        budget = SeriesBudget(max_series)
        return cls(
            budget=budget,
            store=FeatureStore(budget, models, max_categories),
            spanmetrics=SpanMetrics(budget),
        )

    def merge(self, other: GatewayState) -> None:
        """Fold another worker's state into this one: counts add, exemplars keep the newest.

        The merged view keeps this state's series budget, so one scrape stays bounded however
        many workers there are; series past it count in the overflow counter.
        """
        self.store.merge(other.store)
        self.spanmetrics.merge(other.spanmetrics)
        self.stats.merge(other.stats)
        self.budget.overflow.update(other.budget.overflow)
        if other.redaction is not None:
            if self.redaction is None:
                self.redaction = Redactor()
            self.redaction.removed += other.redaction.removed
            self.redaction.values.update(other.redaction.values)
        for name, stats in other.exporters.items():
            self.exporters.setdefault(name, ExporterStats()).merge(stats)
        if other.samples is not None:
            if self.samples is None:
                self.samples = RequestSamples(
                    other.samples.rows_per_model, other.samples.per_bucket
                )
            self.samples.merge(other.samples)
        if other.ground_truth is not None:
            if self.ground_truth is None:
                self.ground_truth = GroundTruthTracker(other.ground_truth.configs)
            self.ground_truth.merge(other.ground_truth)
