"""The C checks and stores of lean spans' attributes (`_leanattrs`) against the Python they
stand for (the path taken without a compiler): the same answers and the same dicts, for
plain and hostile keys and values."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanKind

from otelml.instrument import spans
from otelml.instrument.spans import LeanSpan, LeanTracer

try:
    from otelml.instrument import _leanattrs as native  # type: ignore[attr-defined]
except ImportError:
    if os.environ.get("OTELML_REQUIRE_NATIVE"):
        pytest.fail("the lean-span C checks were not built (make test needs them)", pytrace=False)
    pytest.skip("lean-span C checks not built", allow_module_level=True)


class Text(str):
    """A str subclass: not plain (the SDK may treat it otherwise)."""


KEYS = st.one_of(st.sampled_from(["a", "b", "ml.feature.x", "", Text("t")]), st.integers(0, 3))
VALUES = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.builds(np.float64, st.floats(allow_nan=False)),
    st.builds(Text, st.text(max_size=3)),
    st.binary(max_size=3),
)
LENGTHS = st.one_of(st.none(), st.integers(0, 6))


def python_plain(attributes: dict[Any, Any], length: int | None) -> bool:
    return all(
        type(k) is str
        and k != ""
        and type(v) in (bool, int, float, str)
        and (length is None or type(v) is not str or len(v) <= length)
        for k, v in attributes.items()
    )


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6), LENGTHS)
def test_plain_scalars_is_the_python_check(attributes: dict[Any, Any], length: int | None) -> None:
    assert native.plain_scalars(attributes, -1 if length is None else length) is python_plain(
        attributes, length
    )


def lean_span(max_attributes: int | None, max_length: int | None) -> LeanSpan:
    from opentelemetry.sdk.trace import SpanLimits

    provider = TracerProvider(
        span_limits=SpanLimits(
            max_span_attributes=max_attributes, max_span_attribute_length=max_length
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    tracer = LeanTracer.for_provider(provider, "t")
    assert tracer is not None
    span = tracer.start("s", SpanKind.SERVER, None, {"a": 1, "http.route": "/p"})
    assert isinstance(span, LeanSpan)
    return span


FIELDS = st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    given_values=st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=3),
    answered=st.dictionaries(st.sampled_from(["p", "q"]), VALUES, max_size=2),
    fields=FIELDS,
    outputs=st.lists(st.sampled_from(["p", "q"]), unique=True, max_size=2),
    collide=st.booleans(),
    limit=st.one_of(st.none(), st.integers(0, 8)),
    length=LENGTHS,
)
def test_add_row_stores_what_the_python_path_stores(
    given_values: dict[str, Any],
    answered: dict[str, Any],
    fields: list[str],
    outputs: list[str],
    collide: bool,
    limit: int | None,
    length: int | None,
) -> None:
    keys = (
        "ml.model.name",
        *("a" if collide and i == 0 else f"ml.feature.{f}" for i, f in enumerate(fields)),
        *(f"ml.prediction.{o}" for o in outputs),
    )
    arguments = (keys, ("m",), given_values, tuple(fields), answered, tuple(outputs))
    in_c = lean_span(limit, length)
    stored_c = in_c.add_row(*arguments)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spans, "_leanattrs", None)
        in_python = lean_span(limit, length)
        stored_python = in_python.add_row(*arguments)
    assert stored_c is stored_python
    assert list(in_c._attributes.items()) == list(in_python._attributes.items())
    if stored_c:  # all or nothing: the row is there, after what the span had
        assert list(in_c._attributes)[-len(keys) :] == list(keys)


def test_add_row_refuses_an_ended_span_and_a_call_whose_keys_and_values_differ() -> None:
    span = lean_span(None, None)
    with pytest.raises(ValueError, match="differ in number"):
        native.add_row({}, ("k1", "k2"), ("m",), {}, (), {}, (), -1, -1)
    span.end()
    assert span.add_row(("k",), ("m",), {}, (), {}, ()) is False
    assert "k" not in span._attributes


def test_random_ids_are_the_sdk_generator_s_draws() -> None:
    random.seed(7)
    ours = [spans._random_id(128, 0), spans._random_id(64, 0)]
    random.seed(7)
    generator = RandomIdGenerator()
    assert ours == [generator.generate_trace_id(), generator.generate_span_id()]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(KEYS, VALUES, max_size=6),
    st.dictionaries(st.sampled_from(["a", "z"]), st.integers(), max_size=2),
    st.one_of(st.none(), st.integers(0, 8)),
    LENGTHS,
)
def test_the_span_s_plain_check_is_the_same_with_and_without_c(
    attributes: dict[Any, Any], own: dict[str, Any], limit: int | None, length: int | None
) -> None:
    from opentelemetry.sdk.trace import SpanLimits

    limits = SpanLimits(max_span_attributes=limit, max_span_attribute_length=length)
    with_c = spans._all_plain(limits, own, attributes)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spans, "_leanattrs", None)
        without = spans._all_plain(limits, own, attributes)
    assert (with_c is None) is (without is None)
    if with_c is not None and without is not None:
        assert list(with_c.items()) == list(without.items())
