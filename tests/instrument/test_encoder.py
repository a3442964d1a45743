"""The native OTLP span encoder against the SDK's encoder: the same bytes, for every field.

Spans come from the real SDK (a TracerProvider), so they are what an exporter receives; the
gateway's decoder reads both encodings the same way.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from otelml.gateway.decode import decode_traces
from otelml.instrument import encoder
from tests.environments import SDK_FLOOR, require

ROOT = Path(__file__).resolve().parents[2]

if not encoder.compiled() and os.environ.get("OTELML_REQUIRE_NATIVE"):
    pytest.fail("the C span encoder was not built (make test requires it)", pytrace=False)
pytestmark = pytest.mark.skipif(not encoder.compiled(), reason="C span encoder not built")


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def mode() -> int:
    found = encoder.native_mode()
    assert found is not None, "the installed SDK's bytes were not matched"
    return found


def same_bytes(spans: Sequence[ReadableSpan]) -> bytes:
    expected = encoder.sdk_encode(spans)
    assert encoder.native_encode(spans, mode()) == expected
    assert encoder.encode_spans(spans) == expected
    return expected


# --- what spans can hold ------------------------------------------------------------------------

texts = st.text(max_size=8)
ints = st.integers(-(2**63), 2**63 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.booleans(), ints, floats, texts, st.binary(max_size=4))
arrays = st.one_of(
    *(
        st.lists(st.one_of(element, st.none()), max_size=5)
        for element in (st.booleans(), ints, floats, texts)
    )
)
attribute_maps = st.dictionaries(texts, st.one_of(scalars, arrays), max_size=8)
ids = st.integers(1, 2**64 - 1)
trace_ids = st.integers(1, 2**128 - 1)
contexts = st.builds(
    lambda trace_id, span_id, remote, state: SpanContext(
        trace_id,
        span_id,
        is_remote=remote,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("k", v) for v in state[:1]]),
    ),
    trace_ids,
    ids,
    st.booleans(),
    st.lists(st.text("abc123", min_size=1, max_size=4), max_size=1),
)
span_plans = st.fixed_dictionaries(
    {
        "name": texts,
        "kind": st.sampled_from(list(SpanKind)),
        "attributes": attribute_maps,
        "parent": st.one_of(st.none(), contexts),
        "events": st.lists(st.tuples(texts, attribute_maps, st.integers(0, 2**63)), max_size=3),
        "links": st.lists(st.tuples(contexts, attribute_maps), max_size=2),
        "status": st.sampled_from(
            [
                None,
                Status(StatusCode.OK),
                Status(StatusCode.ERROR, "boom"),
                Status(StatusCode.ERROR),
            ]
        ),
        "times": st.tuples(st.integers(0, 2**62), st.integers(0, 2**62)),
    }
)
resources = st.builds(
    lambda attributes, schema: Resource(attributes, schema),
    st.dictionaries(texts, st.one_of(texts, ints, st.booleans()), max_size=4),
    st.sampled_from(["", "https://opentelemetry.io/schemas/1.21.0"]),
)


def make_spans(resource: Resource, scopes: list[str], plans: list[dict[str, Any]]) -> list[Any]:
    keep = Keep()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(keep))
    for index, plan in enumerate(plans):
        tracer = provider.get_tracer(scopes[index % len(scopes)], "0.1", "https://scope/schema")
        parent = plan["parent"]
        context = set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
        start, end = sorted(plan["times"])
        span = tracer.start_span(
            plan["name"],
            context=context,
            kind=plan["kind"],
            attributes=plan["attributes"],
            links=[Link(c, a) for c, a in plan["links"]],
            start_time=start,
        )
        for name, attributes, timestamp in plan["events"]:
            span.add_event(name, attributes, timestamp=timestamp)
        if plan["status"] is not None:
            span.set_status(plan["status"])
        span.end(end_time=end)
    provider.shutdown()
    return keep.spans


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    resources,
    st.lists(st.sampled_from(["a", "b", "otelml.instrument"]), min_size=1, max_size=3),
    st.lists(span_plans, min_size=1, max_size=4),
)
def test_native_bytes_equal_the_sdk_encoders(
    resource: Resource, scopes: list[str], plans: list[dict[str, Any]]
) -> None:
    same_bytes(make_spans(resource, scopes, plans))


def test_spans_of_several_resources_group_as_the_sdk_groups_them() -> None:
    first = make_spans(Resource({"service.name": "a"}), ["x", "y"], [plan(), plan(), plan()])
    second = make_spans(Resource({"service.name": "b"}), ["x"], [plan()])
    again = make_spans(Resource({"service.name": "a"}), ["y"], [plan()])  # equal, not identical
    same_bytes([first[0], second[0], first[1], again[0], first[2]])


def plan(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "predict",
        "kind": SpanKind.SERVER,
        "attributes": {"ml.model.name": "churn", "ml.feature.age": [41.0, 57.5]},
        "parent": None,
        "events": [],
        "links": [],
        "status": None,
        "times": (1_700_000_000_000_000_000, 1_700_000_000_001_000_000),
    }
    base.update(overrides)
    return base


def test_a_long_batch_needs_multi_byte_lengths() -> None:
    wide = {f"ml.feature.f{i}": [float(j) for j in range(64)] for i in range(100)}
    spans = make_spans(Resource({"service.name": "wide"}), ["s"], [plan(attributes=wide)] * 20)
    assert len(same_bytes(spans)) > 1 << 20


def test_what_the_native_encoder_cannot_write_goes_to_the_sdks_encoder() -> None:
    spans = make_spans(
        Resource({"service.name": "big"}), ["s"], [plan(attributes={"huge": 2**64, "ok": 1})]
    )
    with pytest.raises(ValueError, match="int beyond int64"):
        encoder.native_encode(spans, mode())
    before = encoder.stats().get("sdk:int beyond int64", 0)
    assert encoder.encode_spans(spans) == encoder.sdk_encode(spans)
    assert encoder.stats()["sdk:int beyond int64"] == before + 1


def test_the_gateway_decodes_both_encodings_identically() -> None:
    attributes = {
        "ml.model.name": "churn",
        "ml.model.version": "3",
        "ml.feature.age": [41.0, 57.5, math.nan],
        "ml.feature.plan": ["free", "pro", ""],
        "ml.feature.n": 7,
        "ml.feature.flag": True,
        "ml.prediction": [0.1, 0.9, 0.5],
    }
    spans = make_spans(
        Resource({"service.name": "churn-api"}),
        ["s"],
        [plan(attributes=attributes, status=Status(StatusCode.ERROR, "x"))],
    )
    native = decode_traces(encoder.native_encode(spans, mode()))
    sdk = decode_traces(encoder.sdk_encode(spans))
    assert native.count == sdk.count == 1
    assert native.services == sdk.services
    assert native.services[native.service[0]] == "churn-api"
    assert native.trace_id.tobytes() == sdk.trace_id.tobytes()
    assert native.trace_id.tobytes() == spans[0].context.trace_id.to_bytes(16, "big")
    assert native.keys == sdk.keys
    assert native.strings == sdk.strings
    for field in ("kind", "status", "time_s", "duration_s"):
        assert getattr(native, field).tolist() == getattr(sdk, field).tolist()
    for field in ("record", "key", "kind", "integer", "text", "from_array", "entry"):
        assert getattr(native.leaves, field).tolist() == getattr(sdk.leaves, field).tolist()
    assert native.leaves.number.tobytes() == sdk.leaves.number.tobytes()  # NaN included
    age = [
        n
        for k, n in zip(native.leaves.key.tolist(), native.leaves.number.tolist(), strict=True)
        if native.keys[k] == "ml.feature.age"
    ]
    assert age[:2] == [41.0, 57.5] and math.isnan(age[2])
    assert native.status.tolist() == [2]  # STATUS_CODE_ERROR


FLOOR_SCRIPT = textwrap.dedent(
    """
    import json, logging
    from otelml.instrument import encoder, exporter
    logging.disable(logging.CRITICAL)
    spans = encoder._probe_spans(nulls=False, raw_bytes=False)
    mode = encoder.native_mode()
    nulls = encoder._probe_spans(nulls=True, raw_bytes=False)
    grpc = exporter.grpc_span_exporter(endpoint="127.0.0.1:9", insecure=True)
    print(json.dumps({
        "mode": mode,
        "same": encoder.encode_spans(spans) == encoder.sdk_encode(spans),
        "nulls_same": encoder.encode_spans(nulls) == encoder.sdk_encode(nulls),
        "stats": encoder.stats(),
        "grpc_native": grpc.native,
    }))
    """
)


def test_on_sdk_1_20_the_bytes_are_that_sdks_and_nulls_go_to_its_encoder() -> None:
    python = require(SDK_FLOOR, "make app-venvs")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # otelml: the venv's wheel
    out = subprocess.run(
        [python, "-c", FLOOR_SCRIPT], env=env, capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    # SDK 1.20 writes no span flags, no schema URLs, no scope attributes and cannot send nulls.
    assert result["mode"] is not None
    newer = encoder.FLAGS | encoder.SCHEMA | encoder.SCOPE_ATTRIBUTES | encoder.NULLS
    assert result["mode"] & newer == 0
    assert result["same"] and result["nulls_same"]
    assert result["stats"] == {"native": 1, "sdk:null value": 1}
    assert result["grpc_native"] is False  # 1.20 keeps no channel: its own stub and encoder


def test_the_native_encoder_can_be_turned_off() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OTELML_NATIVE_ENCODER": "0"}
    script = "from otelml.instrument import encoder; print(encoder.native_mode())"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "None", out.stderr
