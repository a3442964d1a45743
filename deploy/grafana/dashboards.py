"""The three Grafana dashboards as code: `python deploy/grafana/dashboards.py` writes the JSON
files beside it (dashboards/*.json), which the Helm chart and Docker Compose provision.

Every query names the metrics of `otelml/semconv.py` and the recording rules of
`deploy/prometheus/otelml-rules.yaml`; tests/deploy/test_dashboard_queries.py runs each one
(template variables included) against a real Prometheus scraping a real gateway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
OUT = Path(__file__).resolve().parent / "dashboards"

Panel = dict[str, Any]

# Selector fragments shared by the model dashboard's queries.
MODEL = 'model="$model", model_version=~"$version"'
FEATURE = f'{MODEL}, feature=~"$feature"'
#: A panel repeated per numeric feature: that panel's one feature.
NUMERIC_ONE = f'{MODEL}, feature="$numeric_feature"'
#: The label-free estimate of the chosen metric per output, and its standard error.
ESTIMATED = (
    f"max by (output, metric) (otelml_performance_estimated{{{MODEL}, "
    'metric=~"$performance_metric"})'
)
STDERR = (
    f"max by (output, metric) (otelml_performance_estimated_stderr{{{MODEL}, "
    'metric=~"$performance_metric"})'
)


def target(
    expr: str,
    legend: str = "",
    *,
    exemplar: bool = False,
    ref: str = "A",
    kind: str = "time_series",
) -> dict[str, Any]:
    """A Prometheus query: `time_series` over the range, `table` (instant, for bar charts of the
    current window) or `heatmap` (buckets as cells)."""
    return {
        "refId": ref,
        "datasource": PROMETHEUS,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "exemplar": exemplar,
        "format": kind,
        "range": kind != "table",
        "instant": kind == "table",
    }


def repeated(p: Panel, variable: str, per_row: int) -> Panel:
    """One copy of the panel per selected value of `variable`, side by side."""
    p.update({"repeat": variable, "repeatDirection": "h", "maxPerRow": per_row})
    return p


def per_bin_comparison(title: str, description: str, variable: str, series: str, by: str) -> Panel:
    """Reference vs current window share per bin (or category), one panel per feature."""
    selector = f'{MODEL}, feature="${variable}"'
    comparison = panel(
        "barchart",
        title,
        description,
        [
            target(f"max by ({by}) (otelml:reference_{series}:ratio{{{selector}}})", kind="table"),
            target(
                f"max by ({by}) (otelml:drift_window_{series}:ratio{{{selector}}})", kind="table"
            ),
        ],
        unit="percentunit",
        options={"xField": by, "legend": {"showLegend": True, "displayMode": "list"}},
        width=8,
    )
    comparison["transformations"] = [
        {"id": "joinByField", "options": {"byField": by, "mode": "outer"}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time 1": True, "Time 2": True},
                "renameByName": {"Value #A": "reference", "Value #B": "live"},
            },
        },
    ]
    return repeated(comparison, variable, 3)


def attribution_table() -> Panel:
    """Per drifting feature, the trace-attribute slices that explain its drift, as a table: the
    share explained beside the slice's traffic share and its own PSI."""
    by = "max by (feature, key, value)"
    table = panel(
        "table",
        "Slices that explain the drift",
        "For each drifting feature: the slices of the configured trace attributes (service "
        "version, pod, route …) that most of its PSI comes from. explained = how much the "
        "window's PSI falls when the slice is left out; traffic = the slice's share of the "
        "window; slice PSI = the slice alone against the reference. A slice explaining far "
        "more than its traffic share is where to look.",
        [
            target(f"{by} (otelml_drift_attribution{{{FEATURE}}})", kind="table"),
            target(f"{by} (otelml_drift_attribution_traffic_share{{{FEATURE}}})", kind="table"),
            target(f"{by} (otelml_drift_attribution_slice_score{{{FEATURE}}})", kind="table"),
        ],
        unit="percentunit",
        width=24,
    )
    table["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True},
                "renameByName": {
                    "Value #A": "explained",
                    "Value #B": "traffic",
                    "Value #C": "slice PSI",
                },
            },
        },
        {"id": "sortBy", "options": {"sort": [{"field": "explained", "desc": True}]}},
    ]
    table["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byName", "options": "slice PSI"},
            "properties": [{"id": "unit", "value": "none"}, {"id": "decimals", "value": 3}],
        }
    ]
    return table


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    thresholds: list[tuple[float | None, str]] | None = None,
    threshold_line: bool = False,
    options: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    width: int = 12,
    height: int = 8,
) -> Panel:
    steps = [{"value": v, "color": c} for v, c in (thresholds or [(None, "green")])]
    field_custom = dict(custom or {})
    if threshold_line:
        field_custom["thresholdsStyle"] = {"mode": "line+area"}
    for index, t in enumerate(targets):
        t["refId"] = chr(ord("A") + index)
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": targets[0]["datasource"] if targets else PROMETHEUS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                "custom": field_custom,
            },
            "overrides": [],
        },
        "options": options or {},
        "gridPos": {"w": width, "h": height},
    }


def row(title: str) -> Panel:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"w": 24, "h": 1},
    }


def query_variable(
    name: str, label: str, query: str, *, multi: bool = False, include_all: bool = False
) -> dict[str, Any]:
    variable: dict[str, Any] = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": PROMETHEUS,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "current": {},
        "options": [],
    }
    if include_all:
        variable["allValue"] = ".*"
    return variable


def custom_variable(name: str, label: str, values: list[str]) -> dict[str, Any]:
    options = [{"text": v, "value": v, "selected": i == 0} for i, v in enumerate(values)]
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "query": ",".join(values),
        "current": {"text": values[0], "value": values[0]},
        "options": options,
        "multi": False,
        "includeAll": False,
    }


def layout(panels: list[Panel]) -> list[Panel]:
    """Place panels left to right, wrapping at Grafana's 24 columns; rows start a new line."""
    x = y = line_height = 0
    for index, p in enumerate(panels, start=1):
        grid = p["gridPos"]
        if p["type"] == "row" or x + grid["w"] > 24:
            x, y = 0, y + line_height
            line_height = 0
        grid.update({"x": x, "y": y})
        p["id"] = index
        x += grid["w"]
        line_height = max(line_height, grid["h"])
        if p["type"] == "row":
            x, y, line_height = 0, y + grid["h"], 0
    return panels


def dashboard(
    uid: str, title: str, description: str, variables: list[dict[str, Any]], panels: list[Panel]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["otelml"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 41,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["otelml"],
                "asDropdown": True,
                "title": "otelml",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": layout(panels),
    }


def model_drift() -> dict[str, Any]:
    variables = [
        query_variable("model", "Model", "label_values(otelml_drift_window_observations, model)"),
        query_variable(
            "version",
            "Version",
            'label_values(otelml_drift_window_observations{model="$model"}, model_version)',
            multi=True,
            include_all=True,
        ),
        query_variable(
            "feature",
            "Feature",
            f"label_values(otelml_drift_window_observations{{{MODEL}}}, feature)",
            multi=True,
            include_all=True,
        ),
        query_variable(
            "numeric_feature",
            "Numeric features (distributions)",
            f'label_values(otelml:reference_bin:ratio{{{MODEL}, feature=~"$feature"}}, feature)',
            multi=True,
            include_all=True,
        ),
        query_variable(
            "categorical_feature",
            "Categorical features (distributions)",
            f'label_values(otelml:reference_category:ratio{{{MODEL}, feature=~"$feature"}}, feature)',
            multi=True,
            include_all=True,
        ),
        query_variable(
            "segment", "Segment", f"label_values(otelml_segment_drift_score{{{MODEL}}}, segment)"
        ),
        query_variable(
            "segment_value",
            "Segment value",
            f'label_values(otelml_segment_drift_score{{{MODEL}, segment="$segment"}}, segment_value)',
            multi=True,
            include_all=True,
        ),
        custom_variable("psi_threshold", "PSI threshold", ["0.1", "0.2", "0.25"]),
        custom_variable(
            "performance_metric",
            "Estimated metric",
            ["accuracy", "precision", "recall", "f1", "roc_auc"],
        ),
    ]
    per_feature = "max by (model_version, feature)"
    panels = [
        row("Drift"),
        panel(
            "timeseries",
            "PSI per feature",
            "Population stability index of the current window against the reference profile; "
            "the band starts at the PSI threshold chosen above (0.1: moderate, 0.2: large shift).",
            [
                target(
                    f'{per_feature} (otelml_drift_score{{{FEATURE}, method="psi"}})',
                    "{{feature}} v{{model_version}}",
                ),
                target("vector($psi_threshold)", "threshold"),
            ],
            thresholds=[(None, "transparent"), (0.1, "orange")],
            threshold_line=True,
        ),
        panel(
            "timeseries",
            "Deciding drift score per feature",
            "The score of the test that decides the verdict (auto: KS p-value or normed "
            "Wasserstein for numeric, chi-square / JS for categorical): distances drift at or "
            "above their threshold, p-values below it.",
            [
                target(
                    f'max by (model_version, feature, method) (otelml_drift_score{{{FEATURE}, method!="psi"}})',
                    "{{feature}} {{method}}",
                )
            ],
        ),
        panel(
            "state-timeline",
            "Verdicts",
            "1 = drift detected for the feature (absent while the window has fewer than "
            "min_samples observations).",
            [target(f"{per_feature} (otelml_drift_detected{{{FEATURE}}})", "{{feature}}")],
            thresholds=[(None, "green"), (1, "red")],
            options={"mergeValues": True, "showValue": "never"},
        ),
        panel(
            "timeseries",
            "Drift events (exemplars open a trace)",
            "Windows that crossed into drift. Each event's exemplar is a trace from the bin "
            "that moved most: click the dot to open it in Tempo.",
            [
                target(
                    f"sum by (feature) (increase(otelml_drift_events_total{{{FEATURE}}}[$__rate_interval]))",
                    "{{feature}}",
                    exemplar=True,
                )
            ],
            custom={"drawStyle": "bars"},
        ),
        panel(
            "timeseries",
            "Observations in the drift window",
            "How much traffic the current verdict rests on; no verdict below min_samples.",
            [
                target(
                    f"sum by (feature) (otelml_drift_window_observations{{{FEATURE}}})",
                    "{{feature}}",
                ),
                target(
                    f"max by (feature) (otelml_drift_insufficient_data{{{FEATURE}}})",
                    "{{feature}} insufficient",
                ),
            ],
        ),
        row("Where the drift comes from"),
        attribution_table(),
        panel(
            "timeseries",
            "Observations of the top slices (exemplars open a trace of the slice)",
            "Per drifting feature, the slices that explain most of its drift: their observations "
            "per second. Each exemplar is a trace of that slice, from its most moved bin.",
            [
                target(
                    "sum by (feature, key, value) (rate(otelml_drift_attribution_observations_total"
                    f"{{{FEATURE}}}[$__rate_interval]))",
                    "{{feature}} {{key}}={{value}}",
                    exemplar=True,
                )
            ],
            unit="reqps",
        ),
        row("Reference vs live"),
        per_bin_comparison(
            "$numeric_feature: share per reference bin",
            "Per bin of the reference profile (upper edge le): the reference share and the "
            "current window's, summed over every gateway replica (recording rules).",
            "numeric_feature",
            "bin",
            "le",
        ),
        per_bin_comparison(
            "$categorical_feature: share per category",
            "The reference's top categories (the rest in __other__), reference vs current window.",
            "categorical_feature",
            "category",
            "category",
        ),
        repeated(
            panel(
                "heatmap",
                "$numeric_feature: live distribution over time",
                "Observations per reference bin over the dashboard's time range; exemplars open "
                "a trace with a value from that bin.",
                [
                    target(
                        f"sum by (le) (increase(otelml_feature_value_bucket{{{NUMERIC_ONE}}}[$__rate_interval]))",
                        "{{le}}",
                        exemplar=True,
                        kind="heatmap",
                    )
                ],
                options={"calculate": False, "yAxis": {"unit": "short"}, "cellGap": 1},
                width=12,
            ),
            "numeric_feature",
            2,
        ),
        row("Data quality"),
        panel(
            "timeseries",
            "Missing values per second",
            "Attribute absent, null or NaN.",
            [
                target(
                    f"sum by (feature) (rate(otelml_feature_missing_total{{{FEATURE}}}[$__rate_interval]))",
                    "{{feature}}",
                )
            ],
            unit="reqps",
        ),
        panel(
            "timeseries",
            "Invalid values per second, by reason",
            "out_of_range (outside the training range), type_mismatch, unknown_category, not_finite.",
            [
                target(
                    f"sum by (feature, reason) (rate(otelml_feature_invalid_total{{{FEATURE}}}[$__rate_interval]))",
                    "{{feature}} {{reason}}",
                )
            ],
            unit="reqps",
        ),
        row("Predictions and performance"),
        panel(
            "timeseries",
            "Predicted classes per second",
            "Distribution of the model's output classes.",
            [
                target(
                    f"sum by (output, class) (rate(otelml_prediction_class_total{{{MODEL}}}[$__rate_interval]))",
                    "{{output}} = {{class}}",
                )
            ],
            unit="reqps",
            custom={"stacking": {"mode": "percent"}, "fillOpacity": 60},
        ),
        panel(
            "timeseries",
            "Prediction drift",
            "PSI of each output against the reference's predictions.",
            [
                target(
                    f'max by (output) (otelml_prediction_drift_score{{{MODEL}, method="psi"}})',
                    "{{output}}",
                )
            ],
            thresholds=[(None, "transparent"), (0.1, "orange")],
            threshold_line=True,
        ),
        panel(
            "timeseries",
            "Performance (once ground truth arrives)",
            "Realized metrics over the window, from predictions joined with their ground truth "
            "(macro averages for multi-class).",
            [
                target(
                    f'max by (output, metric) (otelml_performance{{{MODEL}, class=~"__macro__|"}})',
                    "{{output}} {{metric}}",
                )
            ],
            unit="percentunit",
        ),
        panel(
            "timeseries",
            "Estimated performance, before labels (± one standard error)",
            "For calibrated probability outputs (a reference built with --target): the "
            "window's accuracy (and the rest) estimated from the scores alone, with its band; "
            "realized beside it once ground truth arrives. The estimate staying while realized "
            "falls is concept drift: the labels no longer follow the training calibration.",
            [
                target(ESTIMATED, "estimated {{output}} {{metric}}"),
                target(
                    f"{ESTIMATED} - on (output, metric) {STDERR}", "−1 se {{output}} {{metric}}"
                ),
                target(
                    f"{ESTIMATED} + on (output, metric) {STDERR}", "+1 se {{output}} {{metric}}"
                ),
                target(
                    f"max by (output, metric) (otelml_performance{{{MODEL}, "
                    'metric=~"$performance_metric"} and on (output) '
                    f"otelml_performance_estimated{{{MODEL}}})",
                    "realized {{output}} {{metric}}",
                ),
            ],
            unit="percentunit",
        ),
        panel(
            "timeseries",
            "Ground truth joined per second",
            "Matched pairs, and ground truth that found no prediction (by reason).",
            [
                target(
                    f"sum by (output) (rate(otelml_ground_truth_total{{{MODEL}}}[$__rate_interval]))",
                    "matched {{output}}",
                ),
                target(
                    f"sum by (output, reason) (rate(otelml_ground_truth_unmatched_total{{{MODEL}}}[$__rate_interval]))",
                    "unmatched {{output}} {{reason}}",
                ),
                target(
                    f"sum by (output) (otelml_performance_window_pairs{{{MODEL}}})",
                    "pairs in window {{output}}",
                ),
            ],
        ),
        row("Segments"),
        panel(
            "timeseries",
            "PSI per segment value",
            "Drift of the selected features inside each slice of the segment chosen above.",
            [
                target(
                    "max by (segment_value, feature) (otelml_segment_drift_score{"
                    f'{FEATURE}, segment="$segment", segment_value=~"$segment_value", method="psi"}})',
                    "{{segment_value}} {{feature}}",
                ),
                target("vector($psi_threshold)", "threshold"),
            ],
            thresholds=[(None, "transparent"), (0.1, "orange")],
            threshold_line=True,
        ),
        panel(
            "timeseries",
            "Traffic per segment value",
            "Observations of the selected features per second in each slice.",
            [
                target(
                    "sum by (segment_value) (rate(otelml_segment_feature_value_bucket{"
                    f'{FEATURE}, segment="$segment", segment_value=~"$segment_value", le="+Inf"}}[$__rate_interval]))',
                    "{{segment_value}}",
                )
            ],
            unit="reqps",
        ),
    ]
    return dashboard(
        "otelml-model-drift",
        "otelml / Model drift",
        "Per model and version: drift per feature against the training reference, verdicts and "
        "drift events with exemplar traces, reference vs live distributions, data quality, "
        "predictions, performance from ground truth, and segments.",
        variables,
        panels,
    )


def model_service() -> dict[str, Any]:
    selector = 'service="$service", span_name=~"$span_name"'
    latency = f"traces_spanmetrics_latency_bucket{{{selector}}}[$__rate_interval]"
    variables = [
        query_variable(
            "service", "Service", "label_values(traces_spanmetrics_calls_total, service)"
        ),
        query_variable(
            "span_name",
            "Operation",
            'label_values(traces_spanmetrics_calls_total{service="$service"}, span_name)',
            multi=True,
            include_all=True,
        ),
    ]
    quantiles = [
        target(
            f"histogram_quantile({q}, sum by (le) (rate({latency})))",
            f"p{int(q * 100)}",
            exemplar=True,
        )
        for q in (0.5, 0.95, 0.99)
    ]
    panels = [
        panel(
            "timeseries",
            "Latency p50 / p95 / p99",
            "From the span metrics the gateway derives (the spanmetrics connector's names); "
            "exemplars are traces from each latency bucket.",
            quantiles,
            unit="s",
        ),
        panel(
            "timeseries",
            "Traffic",
            "Spans per second by operation.",
            [
                target(
                    f"sum by (span_name) (rate(traces_spanmetrics_calls_total{{{selector}}}[$__rate_interval]))",
                    "{{span_name}}",
                )
            ],
            unit="reqps",
        ),
        panel(
            "timeseries",
            "Errors",
            "Share of spans with status ERROR, by operation.",
            [
                target(
                    "sum by (span_name) (rate(traces_spanmetrics_calls_total{"
                    f'{selector}, status_code="STATUS_CODE_ERROR"}}[$__rate_interval]))'
                    f" / sum by (span_name) (rate(traces_spanmetrics_calls_total{{{selector}}}[$__rate_interval]))",
                    "{{span_name}}",
                )
            ],
            unit="percentunit",
            thresholds=[(None, "green"), (0.01, "red")],
        ),
        panel(
            "stat",
            "Requests in range",
            "Spans of the selected operations in the dashboard's time range.",
            [
                target(
                    f"sum(increase(traces_spanmetrics_calls_total{{{selector}}}[$__range]))",
                    "requests",
                )
            ],
            options={"reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        {
            "type": "logs",
            "title": "Logs of the service (trace ids link to Tempo)",
            "description": "Log records the gateway forwarded to Loki's OTLP endpoint; their "
            "trace_id (structured metadata) is a derived field that opens the trace.",
            "datasource": LOKI,
            "targets": [{"refId": "A", "datasource": LOKI, "expr": '{service_name="$service"}'}],
            "options": {
                "showTime": True,
                "wrapLogMessage": True,
                "enableLogDetails": True,
                "sortOrder": "Descending",
            },
            "fieldConfig": {"defaults": {}, "overrides": []},
            "gridPos": {"w": 24, "h": 10},
        },
    ]
    return dashboard(
        "otelml-model-service",
        "otelml / Model service",
        "Golden signals of a model service from its span metrics, with exemplar traces, and its "
        "logs linked to traces.",
        variables,
        panels,
    )


def gateway() -> dict[str, Any]:
    variables = [
        query_variable(
            "instance",
            "Replica",
            "label_values(otelml_receiver_accepted_spans_total, instance)",
            multi=True,
            include_all=True,
        )
    ]
    on = 'instance=~"$instance"'
    panels = [
        row("Intake"),
        panel(
            "timeseries",
            "Accepted per second",
            "Spans and log records acknowledged to clients, by transport.",
            [
                target(
                    f"sum by (transport) (rate(otelml_receiver_accepted_spans_total{{{on}}}[$__rate_interval]))",
                    "spans {{transport}}",
                ),
                target(
                    f"sum by (transport) (rate(otelml_receiver_accepted_log_records_total{{{on}}}[$__rate_interval]))",
                    "log records {{transport}}",
                ),
            ],
            unit="reqps",
        ),
        panel(
            "timeseries",
            "Refused per second, by reason",
            "Items refused after decoding (e.g. invalid ids), and whole requests refused before "
            "decoding (unauthenticated, too large, over the memory or in-flight budget).",
            [
                target(
                    f"sum by (reason) (rate(otelml_receiver_refused_spans_total{{{on}}}[$__rate_interval]))",
                    "spans {{reason}}",
                ),
                target(
                    f"sum by (reason) (rate(otelml_receiver_requests_refused_total{{{on}}}[$__rate_interval]))",
                    "requests {{reason}}",
                ),
            ],
            unit="reqps",
        ),
        row("Forwarding"),
        panel(
            "timeseries",
            "Queue bytes vs capacity",
            "Undelivered bytes per destination queue against queue.max_bytes; a full queue "
            "refuses with a retry hint.",
            [
                target(
                    f"sum by (exporter) (otelml_exporter_queue_size{{{on}}})", "{{exporter}} queued"
                ),
                target(
                    f"sum by (exporter) (otelml_exporter_queue_capacity{{{on}}})",
                    "{{exporter}} capacity",
                ),
            ],
            unit="bytes",
        ),
        panel(
            "timeseries",
            "Sent and failed per second",
            "Delivered, dropped after a permanent error (by reason), and retried send attempts.",
            [
                target(
                    f"sum by (exporter) (rate(otelml_exporter_sent_spans_total{{{on}}}[$__rate_interval]))",
                    "{{exporter}} sent spans",
                ),
                target(
                    f"sum by (exporter) (rate(otelml_exporter_sent_log_records_total{{{on}}}[$__rate_interval]))",
                    "{{exporter}} sent log records",
                ),
                target(
                    f"sum by (exporter, reason) (rate(otelml_exporter_send_failed_log_records_total{{{on}}}[$__rate_interval]))",
                    "{{exporter}} failed {{reason}}",
                ),
                target(
                    f"sum by (exporter) (rate(otelml_exporter_retries_total{{{on}}}[$__rate_interval]))",
                    "{{exporter}} retries",
                ),
            ],
            unit="reqps",
        ),
        panel(
            "stat",
            "Conservation: spans unaccounted for",
            "accepted − (sent + failed + queued) over the selected replicas that forward "
            "traces; anything but 0 means spans were lost.",
            [
                target(
                    f'sum(otelml_receiver_accepted_spans_total{{{on}}} and on (instance) otelml_exporter_queue_items{{exporter="traces"}})'
                    f" - sum(otelml_exporter_sent_spans_total{{{on}}})"
                    f" - (sum(otelml_exporter_send_failed_spans_total{{{on}}}) or vector(0))"
                    f' - sum(otelml_exporter_queue_items{{{on}, exporter="traces"}})',
                    "spans",
                )
            ],
            thresholds=[(None, "green"), (1, "red")],
            options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
            width=6,
        ),
        panel(
            "stat",
            "Conservation: log records unaccounted for",
            "accepted − (sent + failed + queued) for log records.",
            [
                target(
                    f'sum(otelml_receiver_accepted_log_records_total{{{on}}} and on (instance) otelml_exporter_queue_items{{exporter="logs"}})'
                    f" - sum(otelml_exporter_sent_log_records_total{{{on}}})"
                    f" - (sum(otelml_exporter_send_failed_log_records_total{{{on}}}) or vector(0))"
                    f' - sum(otelml_exporter_queue_items{{{on}, exporter="logs"}})',
                    "log records",
                )
            ],
            thresholds=[(None, "green"), (1, "red")],
            options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
            width=6,
        ),
        panel(
            "timeseries",
            "Queue items",
            "Spans and log records waiting per destination (the queued term of conservation).",
            [target(f"sum by (exporter) (otelml_exporter_queue_items{{{on}}})", "{{exporter}}")],
        ),
        row("Series budget"),
        panel(
            "timeseries",
            "Series over the budget, per second",
            "Observations folded into no series of their own because limits.max_series was "
            "reached (Prometheus would otherwise fail the whole scrape past sample_limit).",
            [
                target(
                    f"sum by (metric) (rate(otelml_series_overflow_total{{{on}}}[$__rate_interval]))",
                    "{{metric}}",
                )
            ],
            unit="reqps",
        ),
        panel(
            "timeseries",
            "Samples per scrape",
            "Size of each replica's exposition, to compare with limits.max_series.",
            [
                target(
                    f"max by (instance) (scrape_samples_scraped{{{on}}} and on (instance) group by (instance) (otelml_receiver_accepted_spans_total))",
                    "{{instance}}",
                )
            ],
        ),
    ]
    return dashboard(
        "otelml-gateway",
        "otelml / Gateway",
        "What an SRE watches on the otelml gateway: intake and refusals, queues, delivery, "
        "conservation (accepted = sent + failed + queued) and the series budget.",
        variables,
        panels,
    )


DASHBOARDS = {
    "otelml-model-drift.json": model_drift,
    "otelml-model-service.json": model_service,
    "otelml-gateway.json": gateway,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
