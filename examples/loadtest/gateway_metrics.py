"""What the gateway's /metrics says about one model: rows counted, drift flags, refusals.

Read from the plain Prometheus text exposition (what a scraper without OpenMetrics gets) with
prometheus_client's parser, so the load test needs nothing of the gateway's own code.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

#: Invalid values the distributions do not count in their buckets or categories: a row's
#: observation of a feature is in exactly one of buckets/categories, missing, or these.
OUTSIDE_COUNTS = ("type_mismatch", "not_finite")
REFUSALS = (
    "otelml_receiver_refused_spans_total",
    "otelml_receiver_refused_log_records_total",
    "otelml_receiver_requests_refused_total",
)
EXPORTER_FAILURES = ("otelml_exporter_send_failed_", "otelml_exporter_enqueue_failed_")


@dataclass(frozen=True)
class Snapshot:
    """One read of /metrics, for one model."""

    #: feature → rows the gateway counted for it (each row counts once per feature).
    rows: dict[str, int]
    #: features and outputs whose current drift window is flagged.
    flagged: frozenset[str]
    predictions_flagged: frozenset[str]
    #: refusals and exporter failures, `metric{reason}` → count (all models: they are the
    #: gateway's, not a model's).
    refused: dict[str, int] = field(default_factory=dict)
    exporter_failures: dict[str, int] = field(default_factory=dict)
    #: `output metric` → value of the current performance window (macro for classes).
    performance: dict[str, float] = field(default_factory=dict)
    ground_truth_matched: int = 0
    ground_truth_unmatched: dict[str, int] = field(default_factory=dict)

    @property
    def counted(self) -> int:
        """Rows the gateway counted for the model: the least of its features' counts."""
        return min(self.rows.values(), default=0)


def _counts_rows(name: str, labels: dict[str, str]) -> bool:
    """A sample that counts rows of a feature: each row is in exactly one of them."""
    if name == "otelml_feature_value_bucket":
        return labels.get("le") == "+Inf"
    if name == "otelml_feature_invalid_total":
        return labels.get("reason") in OUTSIDE_COUNTS
    return name in ("otelml_feature_category_total", "otelml_feature_missing_total")


def parse(text: str, model: str) -> Snapshot:
    rows: defaultdict[str, float] = defaultdict(float)
    flagged, predictions_flagged = set(), set()
    refused: defaultdict[str, float] = defaultdict(float)
    failures: defaultdict[str, float] = defaultdict(float)
    performance: dict[str, float] = {}
    matched = 0.0
    unmatched: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name in REFUSALS or name.startswith(EXPORTER_FAILURES):
                target = refused if name in REFUSALS else failures
                key = f"{name}{{{labels['reason']}}}" if "reason" in labels else name
                target[key] += value
                continue
            if labels.get("model") != model:
                continue
            feature = labels.get("feature", "")
            if _counts_rows(name, labels):
                rows[feature] += value
            elif name == "otelml_drift_detected" and value == 1:
                flagged.add(feature)
            elif name == "otelml_prediction_drift_detected" and value == 1:
                predictions_flagged.add(labels["output"])
            elif name == "otelml_performance" and labels.get("class", "__macro__") == "__macro__":
                if math.isfinite(value):
                    performance[f"{labels['output']} {labels['metric']}"] = value
            elif name == "otelml_ground_truth_total":
                matched += value
            elif name == "otelml_ground_truth_unmatched_total":
                unmatched[labels["reason"]] += value
    return Snapshot(
        rows={k: int(v) for k, v in rows.items()},
        flagged=frozenset(flagged),
        predictions_flagged=frozenset(predictions_flagged),
        refused={k: int(v) for k, v in refused.items() if v},
        exporter_failures={k: int(v) for k, v in failures.items() if v},
        performance=performance,
        ground_truth_matched=int(matched),
        ground_truth_unmatched={k: int(v) for k, v in unmatched.items() if v},
    )
