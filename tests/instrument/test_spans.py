"""Lean spans against the SDK's: the same operations give the same exported bytes (every
field: ids, flags, parent, trace state, attributes and their order, dropped counts, events,
status, scope, resource), on this SDK and on the SDK floor; sampling and limits are the
provider's; anything that could tell the difference gets the SDK's own spans."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanKind

from otelml.instrument.spans import LeanSpan, LeanTracer
from tests.environments import SDK_FLOOR, require
from tests.instrument import lean_scenarios

HERE = Path(__file__).resolve().parent


def assert_same(side_by_side: dict[str, Any]) -> None:
    sdk, lean = side_by_side["sdk"], side_by_side["lean"]
    diff = "\n".join(
        difflib.unified_diff(sdk["decoded"].splitlines(), lean["decoded"].splitlines(), lineterm="")
    )
    assert lean["bytes"] == sdk["bytes"], diff
    assert lean["native_same"] and sdk["native_same"]
    assert lean["flags"] == sdk["flags"]
    assert lean["dropped"] == sdk["dropped"]


@pytest.fixture(scope="module")
def compared() -> dict[str, Any]:
    return lean_scenarios.compare()


def test_a_request_s_spans_are_the_sdk_s_byte_for_byte(compared: dict[str, Any]) -> None:
    assert_same(compared["default"])
    lean = compared["default"]["lean"]
    assert lean["types"] == ["LeanSpan", "LeanSpan", "NonRecordingSpan", "str"]
    # arrays of one plain type keep the lean span's plain dict (a copy, as tuples)
    assert lean["containers"] == ["dict"]
    assert "double_value: 9.0" not in lean["decoded"]
    # server (remote parent), the user's child span, a root; the unsampled parent's child: none
    assert lean["dropped"] == [0, 0, 0]
    decoded = lean["decoded"]
    assert decoded.count("\n  scope_spans {") == 2  # the lean scope and the user's
    assert 'name: "POST /predict"' in decoded and 'string_value: "from the handler"' in decoded


def test_sampler_decisions_are_the_provider_s(compared: dict[str, Any]) -> None:
    for name in ("ratio_0", "ratio_1"):
        assert_same(compared[name])
    # ratio 0, parent-based: the sampled remote parent's child is kept, the root is not
    assert compared["ratio_0"]["lean"]["types"][:3] == [
        "LeanSpan",
        "NonRecordingSpan",
        "NonRecordingSpan",
    ]
    assert [f & 1 for f in compared["ratio_0"]["lean"]["flags"]] == [1, 0, 0]  # sampled bit
    assert compared["ratio_1"]["lean"]["types"][:3] == ["LeanSpan", "LeanSpan", "NonRecordingSpan"]


def test_count_and_length_limits_and_dropped_counts(compared: dict[str, Any]) -> None:
    assert_same(compared["limits"])
    lean = compared["limits"]["lean"]
    # 4 attributes kept of 10 offered (6 evicted oldest-first), the empty key and the object
    # are the SDK's to judge; the span exactly at its limit stays plain
    assert lean["dropped"] == compared["limits"]["sdk"]["dropped"] == [6, 0]
    assert lean["containers"] == ["dict"]
    assert "dropped_events_count: 2" in lean["decoded"]
    assert 'string_value: "01234"' in lean["decoded"]  # cut at max_span_attribute_length


def test_the_same_on_the_sdk_floor() -> None:
    python = require(SDK_FLOOR, "make app-venvs")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # otelml: the venv's wheel
    out = subprocess.run(
        [python, str(HERE / "lean_scenarios.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for name in ("default", "ratio_0", "ratio_1", "limits", "server", "server_parent_off"):
        assert_same(result[name])
    # SDK 1.20 counts only evictions (4), not the keys and values it rejects: as its spans do
    assert result["limits"]["lean"]["dropped"] == result["limits"]["sdk"]["dropped"] == [4, 0]


class Watching(SpanProcessor):
    """A processor that looks at starting spans: lean spans must not be used beside it."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self.started.append(span.name)
        span.set_attribute("seen.on_start", True)


def test_an_extra_processor_gets_the_sdk_s_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = LeanTracer.for_provider(provider, "t")
    assert tracer is not None
    assert type(tracer.start("lean")) is LeanSpan

    watching = Watching()
    provider.add_span_processor(watching)  # added after the lean tracer was made
    assert LeanTracer.for_provider(provider, "t") is None
    span = tracer.start("sdk", SpanKind.SERVER, None, {"a": 1})
    assert type(span) is not LeanSpan and isinstance(span, Span)
    span.end()
    assert watching.started == ["sdk"]
    (finished,) = [s for s in exporter.get_finished_spans() if s.name == "sdk"]
    assert dict(finished.attributes or {}) == {"a": 1, "seen.on_start": True}
    provider.shutdown()


def test_no_lean_tracer_for_other_providers_or_a_disabled_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert LeanTracer.for_provider(trace.NoOpTracerProvider(), "t") is None
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert LeanTracer.for_provider(TracerProvider(), "t") is None


def test_ended_lean_spans_are_readable_spans_the_exporter_gets_once() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = LeanTracer.for_provider(provider, "t", "2")
    assert tracer is not None
    span = tracer.start("once", attributes={"k": "v"})
    assert isinstance(span, LeanSpan) and span.is_recording()
    with trace.use_span(span, end_on_exit=True):
        assert trace.get_current_span() is span
    span.end()  # a second end: warned, not exported again
    (finished,) = exporter.get_finished_spans()
    assert isinstance(finished, ReadableSpan) and finished is span  # ended: read-only
    assert dict(finished.attributes or {}) == {"k": "v"}
    assert finished.instrumentation_scope is not None
    assert (finished.instrumentation_scope.name, finished.instrumentation_scope.version) == (
        "t",
        "2",
    )
    assert finished.resource is provider.resource
    assert not isinstance(
        tracer.start("x", parent_context=lean_scenarios.parent_of(lean_scenarios.UNSAMPLED_REMOTE)),
        LeanSpan,
    )
    assert isinstance(
        tracer.start("x", parent_context=lean_scenarios.parent_of(lean_scenarios.UNSAMPLED_REMOTE)),
        NonRecordingSpan,
    )


def test_the_server_steps_are_the_sdk_s_under_every_static_sampler(
    compared: dict[str, Any],
) -> None:
    """`start` with attributes given away, `add_row`, `finish` and children of local parents,
    under the SDK's static samplers (decided without calling them) and the default."""
    for name in ("server", "server_always_on", "server_always_off", "server_parent_off"):
        assert_same(compared[name])
    server = compared["server"]["lean"]
    assert server["types"][:3] == ["LeanSpan", "LeanSpan", "NonRecordingSpan"]
    assert server["answers"] == [True, False]  # add_row: stored, then refused (keys set)
    assert compared["server_always_off"]["lean"]["types"][:3] == ["NonRecordingSpan"] * 3
    # parent-based, root always off: the sampled remote parent's child and its local child
    # are kept, the unsampled local parent's child is not
    assert compared["server_parent_off"]["lean"]["types"][:3] == [
        "LeanSpan",
        "LeanSpan",
        "NonRecordingSpan",
    ]
