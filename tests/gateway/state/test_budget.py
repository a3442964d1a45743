"""The series budget: reservations all-or-nothing, overflow counted by metric, merged, exposed."""

from __future__ import annotations

from otelml.gateway.state.budget import SeriesBudget
from otelml.gateway.state.families import Sample


def test_a_reservation_fits_whole_or_not_at_all() -> None:
    budget = SeriesBudget(100)
    assert budget.reserve(60)
    assert not budget.reserve(41)  # 101 > 100: nothing taken
    assert budget.used == 60
    assert budget.reserve(40)
    assert budget.used == 100
    assert not budget.reserve(1)


def test_overflow_is_counted_by_metric_and_merges_without_the_used_series() -> None:
    mine, theirs = SeriesBudget(10), SeriesBudget(10)
    mine.count_overflow("otelml_feature_value", 3)
    theirs.count_overflow("otelml_feature_value", 4)
    theirs.count_overflow("traces_spanmetrics_calls", 2)
    assert theirs.reserve(7)
    mine.merge(theirs)
    assert dict(mine.overflow) == {"otelml_feature_value": 7, "traces_spanmetrics_calls": 2}
    assert mine.used == 0  # the merged view keeps its own budget


def test_collect_is_one_counter_family_sorted_by_metric() -> None:
    budget = SeriesBudget(1)
    budget.count_overflow("b", 2)
    budget.count_overflow("a", 5)
    (family,) = budget.collect()
    assert (family.name, family.kind) == ("otelml_series_overflow_total", "counter")
    assert family.samples == [Sample((("metric", "a"),), 5), Sample((("metric", "b"),), 2)]
