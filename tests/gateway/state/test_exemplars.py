"""Exemplar slots: the last traced observation per bucket, refreshes throttled, newer wins."""

from __future__ import annotations

import numpy as np
import pytest

from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.families import Exemplar, exemplars_of
from otelml.gateway.state.observations import Origin


def _origin(n: int, traced: list[bool] | None = None, time_s: float = 100.0) -> Origin:
    trace = np.zeros((n, 16), np.uint8)
    span = np.zeros((n, 8), np.uint8)
    for i in range(n):
        if traced is None or traced[i]:
            trace[i, -1] = i + 1
            span[i, -1] = i + 1
    return Origin(trace, span, np.full(n, time_s) + np.arange(n))


def test_each_bucket_keeps_the_batch_last_observation_when_it_is_traced() -> None:
    slots = Exemplars(4)
    bucket = np.array([0, 2, 0, 2, 3])
    value = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # Bucket 2's last observation (record 3) has no trace id: the slot stays as it was.
    slots.record(bucket, value, np.arange(5), _origin(5, [True, True, True, False, True]))
    assert slots.value.tolist() == [3.0, 0.0, 0.0, 5.0]
    assert slots.time_s.tolist() == [102.0, 0.0, 0.0, 104.0]
    assert exemplars_of(slots, 4) == [
        Exemplar(f"{3:032x}", f"{3:016x}", 3.0, 102.0),
        None,
        None,
        Exemplar(f"{5:032x}", f"{5:016x}", 5.0, 104.0),
    ]


def test_refreshes_are_throttled_except_for_a_first_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Exemplars, "refresh_s", 3600.0)
    slots = Exemplars(2)
    origin = _origin(1)
    slots.offer(np.array([0]), np.array([1.0]), np.array([0]), origin, False)  # first: due
    slots.offer(np.array([0]), np.array([5.0]), np.array([0]), origin, False)  # not due
    assert slots.value.tolist() == [1.0, 0.0]
    slots.offer(np.array([1]), np.array([7.0]), np.array([0]), origin, True)  # fills a bucket
    assert slots.value.tolist() == [1.0, 7.0]


def test_merge_keeps_the_newer_exemplar_slot_by_slot() -> None:
    old, new = Exemplars(2), Exemplars(2)
    old.record(np.array([0, 1]), np.array([1.0, 2.0]), np.arange(2), _origin(2, time_s=10.0))
    new.record(np.array([0]), np.array([9.0]), np.arange(1), _origin(1, time_s=50.0))
    old.merge(new)
    assert old.value.tolist() == [9.0, 2.0]
    assert old.time_s.tolist() == [50.0, 11.0]
