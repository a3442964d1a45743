"""Attribute and metric names: the contract between app side, gateway, dashboards and tests.

Every name that crosses a process boundary is spelled here once; nothing else in the
project writes these strings by hand.
"""

from __future__ import annotations

from typing import Final, Literal

# --- span / log-record attributes written by the app side (DESIGN.md §2) -----------------
MODEL_NAME: Final = "ml.model.name"
MODEL_VERSION: Final = "ml.model.version"
FEATURE_PREFIX: Final = "ml.feature."
PREDICTION: Final = "ml.prediction"
PREDICTION_PREFIX: Final = "ml.prediction."
PREDICTION_ID: Final = "ml.prediction.id"
GROUND_TRUTH: Final = "ml.ground_truth"
GROUND_TRUTH_PREFIX: Final = "ml.ground_truth."
#: Every ml.* key starts with this; the gateway only looks further at keys that do.
ML_PREFIX: Final = "ml."

#: The `output` label of a bare `ml.prediction` attribute (one-output models).
DEFAULT_OUTPUT: Final = "prediction"
#: Category label of everything outside the reference's top-K categories.
OTHER_CATEGORY: Final = "__other__"
#: `feature` label of observations whose own series would exceed `limits.max_series`.
OVERFLOW_LABEL: Final = "__overflow__"

# --- signals: the units receivers, exporters and their self-metrics count in ---------------
#: Spelled as in the metric names (otelml_receiver_accepted_spans_total, …).
Signal = Literal["spans", "log_records", "data_points"]
SIGNALS: Final[tuple[Signal, ...]] = ("spans", "log_records", "data_points")

# --- invalid-value reasons (label `reason` of otelml_feature_invalid_total) -----------------
INVALID_OUT_OF_RANGE: Final = "out_of_range"
INVALID_TYPE_MISMATCH: Final = "type_mismatch"
INVALID_UNKNOWN_CATEGORY: Final = "unknown_category"
INVALID_NOT_FINITE: Final = "not_finite"
INVALID_REASONS: Final = (
    INVALID_OUT_OF_RANGE,
    INVALID_TYPE_MISMATCH,
    INVALID_UNKNOWN_CATEGORY,
    INVALID_NOT_FINITE,
)

# --- metric names (gateway → Prometheus, DESIGN.md §3) -------------------------------------
FEATURE_VALUE: Final = "otelml_feature_value"
FEATURE_CATEGORY: Final = "otelml_feature_category"  # counter: exposed with _total
FEATURE_MISSING: Final = "otelml_feature_missing"
FEATURE_INVALID: Final = "otelml_feature_invalid"
PREDICTION_VALUE: Final = "otelml_prediction_value"
PREDICTION_CLASS: Final = "otelml_prediction_class"
PREDICTION_MISSING: Final = "otelml_prediction_missing"
PREDICTION_INVALID: Final = "otelml_prediction_invalid"
REFERENCE_PREFIX: Final = "otelml_reference_"
#: The reference profile's own counts, same label sets as the live series (gauges).
REFERENCE_FEATURE_VALUE: Final = "otelml_reference_feature_value"  # gaugehistogram
REFERENCE_FEATURE_CATEGORY: Final = "otelml_reference_feature_category"
REFERENCE_PREDICTION_VALUE: Final = "otelml_reference_prediction_value"
REFERENCE_PREDICTION_CLASS: Final = "otelml_reference_prediction_class"

#: Per reference bin of a numeric feature: its share of the reference; `le_prev` names the
#: bin's lower bound (absent for the first bin), so PromQL can difference cumulative buckets.
REFERENCE_FEATURE_BIN_RATIO: Final = "otelml_reference_feature_bin_ratio"
LABEL_LE_PREV: Final = "le_prev"
#: The current drift window's counts (cumulative buckets / per category), summable over replicas.
DRIFT_WINDOW_VALUE: Final = "otelml_drift_window_value"  # gaugehistogram
DRIFT_WINDOW_CATEGORY: Final = "otelml_drift_window_category"

DRIFT_SCORE: Final = "otelml_drift_score"
DRIFT_DETECTED: Final = "otelml_drift_detected"
DRIFT_EVENTS: Final = "otelml_drift_events"  # counter: exposed with _total
DRIFT_WINDOW_OBSERVATIONS: Final = "otelml_drift_window_observations"
DRIFT_INSUFFICIENT_DATA: Final = "otelml_drift_insufficient_data"
PREDICTION_DRIFT_SCORE: Final = "otelml_prediction_drift_score"
PREDICTION_DRIFT_DETECTED: Final = "otelml_prediction_drift_detected"
PREDICTION_DRIFT_EVENTS: Final = "otelml_prediction_drift_events"
PREDICTION_DRIFT_WINDOW_OBSERVATIONS: Final = "otelml_prediction_drift_window_observations"
PREDICTION_DRIFT_INSUFFICIENT_DATA: Final = "otelml_prediction_drift_insufficient_data"
LABEL_METHOD: Final = "method"

#: Drift attribution: per drifting series, the trace-attribute slices ({key, value}) that
#: explain its drift. The share explained (0–1: how much the window's PSI drops when the slice
#: is left out), the slice's share of the window's traffic, the slice's own PSI vs the
#: reference, and a counter of the slice's observations whose exemplar is a trace of that slice
#: (OpenMetrics allows exemplars on counters, not on gauges).
DRIFT_ATTRIBUTION: Final = "otelml_drift_attribution"
DRIFT_ATTRIBUTION_TRAFFIC_SHARE: Final = "otelml_drift_attribution_traffic_share"
DRIFT_ATTRIBUTION_SLICE_SCORE: Final = "otelml_drift_attribution_slice_score"
DRIFT_ATTRIBUTION_OBSERVATIONS: Final = "otelml_drift_attribution_observations"  # _total
LABEL_KEY: Final = "key"
LABEL_VALUE: Final = "value"
#: Trace attributes every model is attributed by (resource first, then span attributes).
DEFAULT_ATTRIBUTION_KEYS: Final = (
    "service.version",
    "service.instance.id",
    "k8s.pod.name",
    "deployment.environment.name",
    "http.route",
)
#: Slice values: the first `values` seen per key keep their own slot; later ones share
#: `__other__`; records without the attribute count in `__unset__`.
ATTRIBUTION_OTHER: Final = "__other__"
ATTRIBUTION_UNSET: Final = "__unset__"

PERFORMANCE: Final = "otelml_performance"
PERFORMANCE_WINDOW_PAIRS: Final = "otelml_performance_window_pairs"
#: Confidence-based estimate per window, from calibrated predicted probabilities alone.
PERFORMANCE_ESTIMATED: Final = "otelml_performance_estimated"
#: Its sampling uncertainty (one standard error) beside it.
PERFORMANCE_ESTIMATED_STDERR: Final = "otelml_performance_estimated_stderr"
GROUND_TRUTH_MATCHED: Final = "otelml_ground_truth"  # counter: exposed with _total
GROUND_TRUTH_UNMATCHED: Final = "otelml_ground_truth_unmatched"  # counter {reason}
GROUND_TRUTH_EVICTED: Final = "otelml_ground_truth_evicted"  # counter {reason}: predictions
GROUND_TRUTH_WAITING: Final = "otelml_ground_truth_waiting"  # gauge {side}
LABEL_METRIC: Final = "metric"
SERIES_OVERFLOW: Final = "otelml_series_overflow"

SPANMETRICS_CALLS: Final = "traces_spanmetrics_calls"  # counter: exposed with _total
SPANMETRICS_LATENCY: Final = "traces_spanmetrics_latency"

RECEIVER_ACCEPTED_SPANS: Final = "otelml_receiver_accepted_spans"
RECEIVER_REFUSED_SPANS: Final = "otelml_receiver_refused_spans"
RECEIVER_ACCEPTED_LOG_RECORDS: Final = "otelml_receiver_accepted_log_records"
RECEIVER_REFUSED_LOG_RECORDS: Final = "otelml_receiver_refused_log_records"
RECEIVER_REQUESTS_REFUSED: Final = "otelml_receiver_requests_refused"
RECEIVER_TRUNCATED: Final = "otelml_receiver_label_values_truncated"
BENTOML_MONITOR_RECORDS: Final = "otelml_bentoml_monitor_records"  # counter {outcome}

# --- label names ------------------------------------------------------------------------------
LABEL_MODEL: Final = "model"
LABEL_MODEL_VERSION: Final = "model_version"
LABEL_FEATURE: Final = "feature"
LABEL_CATEGORY: Final = "category"
LABEL_OUTPUT: Final = "output"
LABEL_CLASS: Final = "class"
LABEL_REASON: Final = "reason"
LABEL_SEGMENT: Final = "segment"
LABEL_SEGMENT_VALUE: Final = "segment_value"
#: Per-slice series (models with `segments:`) live in their own families: otelml_segment_*.
SEGMENT_PREFIX: Final = "otelml_segment_"


def segment_name(metric: str) -> str:
    """The family of a metric's per-slice series: otelml_x → otelml_segment_x.

    Slices get their own families so that `sum` over a family never adds a slice to the
    whole it is part of.
    """
    return SEGMENT_PREFIX + metric.removeprefix("otelml_")


# --- spanmetrics label values, spelled as the OpenTelemetry spanmetrics connector does ----------
SPAN_KINDS: Final = (
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
)
STATUS_CODES: Final = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")
#: The spanmetrics connector's default latency buckets, in seconds.
SPANMETRICS_BUCKETS: Final = (
    0.002,
    0.004,
    0.006,
    0.008,
    0.01,
    0.05,
    0.1,
    0.2,
    0.4,
    0.8,
    1.0,
    1.4,
    2.0,
    5.0,
    10.0,
    15.0,
)
