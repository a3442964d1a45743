"""The C wire scanner against its pure-Python twin (built on the official protobuf classes)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelml.errors import Permanent
from otelml.gateway.decode import NATIVE, _pyscan, decode_traces
from tests.gateway.otlp_builders import logs, traces

if not NATIVE and os.environ.get("OTELML_REQUIRE_NATIVE"):
    pytest.fail("the C scanner was not built (make test requires it)", pytrace=False)
pytestmark = pytest.mark.skipif(not NATIVE, reason="C scanner not built")

if NATIVE:
    from otelml.gateway.decode import _otlpscan  # type: ignore[attr-defined]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=4),
)
values = st.one_of(
    scalars, st.lists(st.one_of(scalars, st.lists(st.integers(0, 3), max_size=2)), max_size=6)
)
keys = st.sampled_from(
    [
        "ml.model.name",
        "ml.model.version",
        "ml.feature.a",
        "ml.feature.b",
        "ml.prediction",
        "ml.prediction.id",
        "http.route",
        "ml.",
        "mlx.feature",
    ]
)
records = st.lists(st.dictionaries(keys, values, max_size=6), max_size=8)


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if key == "leaf_number":
            # NaN == NaN bit for bit: compare the raw bytes.
            assert a[key] == b[key], key
        else:
            assert a[key] == b[key], key


#: Context keys: span attributes, resource attributes, an `ml.*` key kept both ways, a repeat.
CONTEXT = (b"http.route", b"service.version", b"ml.model.version", b"tenant", b"http.route")
resources = st.dictionaries(st.sampled_from(["service.version", "tenant", "zone"]), scalars)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.text(max_size=8), st.booleans(), resources)
def test_c_scanner_equals_python_scanner(
    spans: list[Any], service: str, as_logs: bool, resource: dict[str, Any]
) -> None:
    payload = logs(spans) if as_logs else traces(spans, service=service or "svc", resource=resource)
    _same(_otlpscan.scan(payload, as_logs, b"ml."), _pyscan.scan(payload, as_logs, b"ml."))
    _same(
        _otlpscan.scan(payload, as_logs, b"ml.", CONTEXT),
        _pyscan.scan(payload, as_logs, b"ml.", CONTEXT),
    )


def test_context_is_the_spans_attribute_else_its_resources() -> None:
    payload = traces(
        [{"http.route": "/a", "ml.model.name": "m"}, {"service.version": "span-level"}, {}],
        resource={"service.version": "1.2", "http.route": 7},
    )
    records = decode_traces(payload, context=("service.version", "http.route", "tenant"))
    assert records.context_keys == ("service.version", "http.route", "tenant")
    named = [
        [records.strings[c] if c >= 0 else None for c in row] for row in records.context.tolist()
    ]
    # A non-string resource value counts as absent; a span's own value overrides its resource's.
    assert named == [["1.2", "/a", None], ["span-level", None, None], ["1.2", None, None]]
    assert decode_traces(payload).context.shape == (3, 0)
    with pytest.raises(Permanent):
        decode_traces(payload, context=tuple(f"k{i}" for i in range(17)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_never_crash(data: bytes, as_logs: bool) -> None:
    try:
        result = _otlpscan.scan(data, as_logs, b"ml.")
    except ValueError:
        return
    count = result["count"]
    assert len(result["trace_id"]) == 16 * count
    leaves = len(result["leaf_record"]) // 4
    assert len(result["leaf_number"]) == 8 * leaves
    records = np.frombuffer(result["leaf_record"], np.int32)
    assert ((records >= 0) & (records <= count)).all()


@settings(max_examples=200, deadline=None)
@given(records, st.data())
def test_truncated_and_corrupted_requests_fail_cleanly(
    spans: list[Any], data: st.DataObject
) -> None:
    payload = bytearray(traces(spans))
    if not payload:
        return
    cut = data.draw(st.integers(0, len(payload) - 1))
    position = data.draw(st.integers(0, len(payload) - 1))
    payload[position] ^= data.draw(st.integers(1, 255))
    for candidate in (bytes(payload[:cut]), bytes(payload)):
        try:
            decode_traces(candidate)
        except Permanent as exc:
            assert exc.reason == "malformed"


def test_malformed_is_a_permanent_error_with_a_reason() -> None:
    with pytest.raises(Permanent, match="malformed protobuf") as error:
        decode_traces(b"\x0a\x05abc")
    assert error.value.reason == "malformed"
    assert error.value.http_status == 400


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    payload = traces([{"ml.model.name": "m", "ml.feature.c": "x"}]).replace(b"\x01x", b"\x01\xff")
    records = decode_traces(payload)
    assert records.strings[-1] == "\ufffd"


@pytest.mark.parametrize("scan", ["c", "python"])
def test_both_scanners_stop_at_max_leaves(scan: str) -> None:
    payload = traces([{"ml.model.name": "m", "ml.feature.x": [1.0] * 10}])
    scanner = _otlpscan.scan if scan == "c" else _pyscan.scan
    assert len(scanner(payload, False, b"ml.", (), 11)["leaf_kind"]) == 11
    with pytest.raises(OverflowError, match=r"more than 10 ml\.\* values"):
        scanner(payload, False, b"ml.", (), 10)
    with pytest.raises(Permanent) as refused:
        decode_traces(payload, max_values=10)
    assert (refused.value.reason, refused.value.http_status) == ("too_many_values", 413)
