"""Everything the gateway knows, in one object: what /metrics, /api and the UI all read.

The aggregate sits with the wiring, not in `state/`: it holds drift engines, ground-truth
trackers and exporter stats too. Each component merges itself (workers) and describes itself
(`collect`); this object only lists them — where a new connector's state is added.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

from otelml.gateway.connectors.connector import Connector
from otelml.gateway.connectors.features import FeaturesConnector
from otelml.gateway.connectors.ground_truth import GroundTruthConnector
from otelml.gateway.connectors.spanmetrics import SpanMetricsConnector
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.drift.history import History
from otelml.gateway.exporters.sender import ExporterStats, Sender, exporter_families
from otelml.gateway.performance.tracker import GroundTruthTracker
from otelml.gateway.pipeline import Pipeline
from otelml.gateway.processors.redaction import Redactor
from otelml.gateway.state.budget import SeriesBudget
from otelml.gateway.state.families import Collect, Family
from otelml.gateway.state.keys import ModelProfile
from otelml.gateway.state.samples import RequestSamples
from otelml.gateway.state.selfmetrics import ReceiverStats
from otelml.gateway.state.spans import SpanMetrics
from otelml.gateway.state.store import FeatureStore


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

    def connectors(self) -> list[Connector]:
        """Every connector over this state, in the order each request reaches them."""
        connectors: list[Connector] = [
            FeaturesConnector(self.store, self.samples),
            SpanMetricsConnector(self.spanmetrics),
        ]
        if self.ground_truth is not None:
            connectors.append(GroundTruthConnector(self.ground_truth, self.store))
        return connectors

    def pipeline(
        self, senders: Sequence[Sender] = (), redactor: Redactor | None = None
    ) -> Pipeline:
        """The pipeline that counts into this state (and forwards through `senders`)."""
        return Pipeline(
            self.connectors(),
            self.stats,
            senders,
            redactor,
            self.ground_truth,
            self.store.slices.context_keys,
        )

    def collectors(self) -> list[Collect]:
        """Every component's `collect`, in exposition order: what /metrics and /api read."""
        collectors: list[Collect] = [self.store.collect]
        if self.drift is not None:
            collectors.append(self.drift.collect)
        if self.ground_truth is not None:
            collectors.append(self.ground_truth.collect)
        collectors += [
            self.spanmetrics.collect,
            self.stats.collect,
            self.budget.collect,
            partial(exporter_families, self.exporters),
        ]
        if self.redaction is not None:
            collectors.append(self.redaction.collect)
        return collectors

    def families(self) -> Iterator[Family]:
        """The whole state as metric families."""
        for collect in self.collectors():
            yield from collect()

    def merge(self, other: GatewayState) -> None:
        """Fold another worker's state into this one: counts add, exemplars keep the newest.

        The merged view keeps this state's series budget, so one scrape stays bounded however
        many workers there are; series past it count in the overflow counter. Drift verdicts
        are not merged: the engine runs where the merged counts are.
        """
        self.store.merge(other.store)
        self.spanmetrics.merge(other.spanmetrics)
        self.stats.merge(other.stats)
        self.budget.merge(other.budget)
        if other.redaction is not None:
            if self.redaction is None:
                self.redaction = Redactor()
            self.redaction.merge(other.redaction)
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
