"""The load test's verdict and its reading of /metrics, without locust or a network."""

from __future__ import annotations

from collections.abc import Set

from examples.loadtest.gateway_metrics import Snapshot, parse
from examples.loadtest.verdict import Poll, Sent, judge

#: `@`: the labels of model diabetes version 1.
EXPOSITION = """\
# TYPE otelml_feature_value histogram
otelml_feature_value_bucket{@,feature="bmi",le="25.0"} 40
otelml_feature_value_bucket{@,feature="bmi",le="+Inf"} 97
otelml_feature_value_bucket{model="other",model_version="1",feature="bmi",le="+Inf"} 1000
# TYPE otelml_feature_missing counter
otelml_feature_missing_total{@,feature="bmi"} 2
otelml_feature_missing_total{@,feature="sex"} 0
# TYPE otelml_feature_invalid counter
otelml_feature_invalid_total{@,feature="bmi",reason="out_of_range"} 5
otelml_feature_invalid_total{@,feature="bmi",reason="type_mismatch"} 1
# TYPE otelml_feature_category counter
otelml_feature_category_total{@,feature="sex",category="1"} 60
otelml_feature_category_total{@,feature="sex",category="2"} 39
otelml_feature_category_total{@,feature="sex",category="__other__"} 1
# TYPE otelml_segment_feature_category counter
otelml_segment_feature_category_total{@,feature="sex",category="1",segment="x",segment_value="a"} 60
# TYPE otelml_drift_detected gauge
otelml_drift_detected{@,feature="bmi"} 1
otelml_drift_detected{@,feature="sex"} 0
otelml_drift_detected{model="other",model_version="1",feature="age"} 1
# TYPE otelml_prediction_drift_detected gauge
otelml_prediction_drift_detected{@,output="progression"} 1
# TYPE otelml_performance gauge
otelml_performance{@,output="progression",metric="mae"} 41.5
otelml_performance{@,output="progression",metric="rmse"} NaN
# TYPE otelml_ground_truth counter
otelml_ground_truth_total{@,output="progression"} 30
# TYPE otelml_ground_truth_unmatched counter
otelml_ground_truth_unmatched_total{@,output="progression",reason="unknown_id"} 4
# TYPE otelml_receiver_refused_spans counter
otelml_receiver_refused_spans_total{transport="grpc",reason="invalid_id"} 3
# TYPE otelml_receiver_requests_refused counter
otelml_receiver_requests_refused_total{transport="http",reason="refused"} 0
# TYPE otelml_exporter_send_failed_spans counter
otelml_exporter_send_failed_spans_total{exporter="traces",reason="permanent"} 2
""".replace("@", 'model="diabetes",model_version="1"')


def test_parse_counts_each_row_once_per_feature_for_the_model_only() -> None:
    snapshot = parse(EXPOSITION, "diabetes")
    # bmi: 97 in buckets (out_of_range ones among them) + 2 missing + 1 type mismatch.
    assert snapshot.rows == {"bmi": 100, "sex": 100}
    assert snapshot.counted == 100
    assert snapshot.flagged == {"bmi"}
    assert snapshot.predictions_flagged == {"progression"}
    assert snapshot.performance == {"progression mae": 41.5}  # NaN: no value
    assert snapshot.ground_truth_matched == 30
    assert snapshot.ground_truth_unmatched == {"unknown_id": 4}
    assert snapshot.refused == {"otelml_receiver_refused_spans_total{invalid_id}": 3}
    assert snapshot.exporter_failures == {"otelml_exporter_send_failed_spans_total{permanent}": 2}


def _snapshot(rows: int, flagged: Set[str] = frozenset(), **extra: object) -> Snapshot:
    return Snapshot(
        rows={"bmi": rows, "sex": rows, "age": rows},
        flagged=frozenset(flagged),
        predictions_flagged=frozenset(),
        performance={"progression mae": 40.0},
        **extra,  # type: ignore[arg-type]
    )


def _polls(*flags: tuple[float, str, set[str] | None], rows: int = 10) -> list[Poll]:
    return [
        Poll(at, phase, None if flagged is None else _snapshot(rows, flagged))
        for at, phase, flagged in flags
    ]


SENT = Sent(requests=50, rows=100, ground_truth_posted=40)
MOVED = ("bmi", "sex")


def test_a_run_that_monitoring_kept_up_with_passes() -> None:
    polls = _polls(
        (1, "warm-up", set()),
        (5, "normal", set()),
        (12, "drift", {"bmi"}),
        (14, "drift", {"bmi", "sex"}),
    )
    verdict = judge("diabetes", SENT, polls, _snapshot(100, {"sex"}), MOVED, drift_at=10)
    assert verdict.passed, verdict.problems
    assert verdict.facts["flagged_during"] == ["bmi", "sex"]
    assert "rows       sent 100 in 50 answered requests; gateway counted 100 (all)" in (
        verdict.report()
    )


def test_lost_rows_early_late_and_wrong_flags_and_silence_all_fail() -> None:
    polls = _polls(
        (1, "normal", {"age"}),
        (5, "normal", None),
        (6, "normal", None),
        (12, "drift", {"bmi", "s1"}),
        rows=90,
    )
    verdict = judge("diabetes", SENT, polls, _snapshot(90), MOVED, drift_at=10)
    assert not verdict.passed
    assert verdict.problems == [
        "the gateway counted 90 rows of the 100 sent (10 lost)",
        "drift flagged before the drift phase: age",
        "drift missed for sex",
        "drift flagged for features that did not move: s1",
        "the gateway did not answer 2 of 4 reads",
    ]
    assert "(no answer from 5 s to 6 s)" in verdict.report()


def test_a_restart_and_an_unreadable_end_are_reported() -> None:
    polls = [Poll(1, "normal", _snapshot(80)), Poll(3, "normal", _snapshot(20))]
    verdict = judge("diabetes", SENT, polls, None, MOVED, drift_at=None)
    assert verdict.problems == [
        "the gateway's /metrics could not be read at the end",
        "the gateway restarted during the run (counts reset at 3 s)",
    ]
    assert verdict.facts["restarts"] == [(3, 80, 20)]


def test_more_rows_than_sent_failed_truth_posts_and_exporter_failures_fail() -> None:
    sent = Sent(requests=50, rows=100, ground_truth_posted=40, ground_truth_failed=5)
    final = _snapshot(120, exporter_failures={"otelml_exporter_send_failed_spans_total": 1})
    verdict = judge("diabetes", sent, [], final, MOVED, drift_at=None)
    assert verdict.problems == [
        "the gateway counted 120 rows of the 100 sent (20 more than sent)",
        "exporter failures: otelml_exporter_send_failed_spans_total 1",
        "5 ground truth posts failed",
    ]
