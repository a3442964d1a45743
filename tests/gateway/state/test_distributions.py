"""Distributions are mergeable sketches: zero() is the identity, merge() is associative."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from otelml.gateway.decode.kinds import KIND_DOUBLE, KIND_STRING
from otelml.gateway.state.distributions import CategoricalDistribution, NumericDistribution
from otelml.gateway.state.observations import Observations, Origin

EDGES = (-1.0, 0.0, 0.5, 2.0)


def _numeric_obs(values: list[float], first: int = 1, time: float = 1.0) -> Observations:
    n = len(values)
    trace = np.zeros((n, 16), np.uint8)
    trace[:, 0] = np.arange(first, first + n) % 256
    trace[:, 1] = 1
    return Observations(
        kind=np.full(n, KIND_DOUBLE, np.int8),
        number=np.asarray(values, dtype=np.float64),
        integer=np.zeros(n, np.int64),
        record=np.arange(n, dtype=np.int32),
        origin=Origin(trace, np.ones((n, 8), np.uint8), np.full(n, time)),
        text=np.full(n, -1, np.int32),
        strings=[],
    )


def _string_obs(values: list[str], time: float = 1.0) -> Observations:
    n = len(values)
    return Observations(
        kind=np.full(n, KIND_STRING, np.int8),
        number=np.full(n, np.nan),
        integer=np.zeros(n, np.int64),
        record=np.arange(n, dtype=np.int32),
        origin=Origin(np.ones((n, 16), np.uint8), np.ones((n, 8), np.uint8), np.full(n, time)),
        text=np.asarray([sorted(set(values)).index(v) for v in values], np.int32),
        strings=sorted(set(values)),
    )


finite = st.floats(-10, 10, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, max_size=30), st.lists(finite, max_size=30), st.lists(finite, max_size=30))
def test_numeric_merge_is_associative_and_equals_observing_everything(
    a: list[float], b: list[float], c: list[float]
) -> None:
    parts = []
    for values in (a, b, c):
        dist = NumericDistribution(EDGES)
        dist.observe(_numeric_obs(values))
        parts.append(dist)
    left = parts[0].zero()
    left.merge(parts[0])
    left.merge(parts[1])
    left.merge(parts[2])
    right_inner = parts[1].zero()
    right_inner.merge(parts[1])
    right_inner.merge(parts[2])
    right = parts[0].zero()
    right.merge(parts[0])
    right.merge(right_inner)
    whole = NumericDistribution(EDGES)
    whole.observe(_numeric_obs(a + b + c))
    for merged in (left, right):
        assert merged.counts.tolist() == whole.counts.tolist()
        assert np.isclose(merged.sum, whole.sum)
    identity = whole.zero()
    identity.merge(whole)
    assert identity.counts.tolist() == whole.counts.tolist()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from("abcdefg"), max_size=40),
    st.lists(st.sampled_from("abcdefg"), max_size=40),
)
def test_categorical_merge_matches_by_name_whatever_order_categories_were_learned(
    a: list[str], b: list[str]
) -> None:
    first = CategoricalDistribution(capacity=10, learn=True)
    first.observe(_string_obs(a))
    second = CategoricalDistribution(capacity=10, learn=True)
    second.observe(_string_obs(b))
    first.merge(second)
    counts = dict(zip(first.categories, first.counts.tolist(), strict=False))
    expected = {c: (a + b).count(c) for c in set(a + b)}
    assert counts == expected


def test_exemplar_is_the_last_value_per_bucket_and_merge_keeps_the_newer() -> None:
    old = NumericDistribution(EDGES)
    old.observe(_numeric_obs([0.2, 0.3, 5.0], first=1, time=10.0))
    # bucket (0, 0.5]: last of 0.2, 0.3 is 0.3 (trace 2); bucket +Inf: 5.0 (trace 3)
    assert old.exemplars.value[2] == 0.3 and old.exemplars.trace_id[2, 0] == 2
    assert old.exemplars.value[4] == 5.0 and old.exemplars.trace_id[4, 0] == 3
    new = NumericDistribution(EDGES)
    new.observe(_numeric_obs([0.4], first=50, time=20.0))
    old.merge(new)
    assert old.exemplars.value[2] == 0.4 and old.exemplars.trace_id[2, 0] == 50
    assert old.exemplars.value[4] == 5.0  # untouched where the other had none


def test_values_on_an_edge_fall_in_the_bucket_it_bounds() -> None:
    dist = NumericDistribution(EDGES)
    dist.observe(_numeric_obs([-1.0, 0.0, 0.5, 2.0, 2.0000001, -5.0]))
    assert dist.counts.tolist() == [2, 1, 1, 1, 1]
