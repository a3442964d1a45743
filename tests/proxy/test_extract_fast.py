"""The extraction's quick routes give exactly what the general ones give: the dictionary fast
path for plain-key rules (every body shape, hostile ones included, against the general table
reader), orjson with the standard library behind it (every document json.loads accepts, read
the same; every other one counted once as not_json), and prediction ids past 64 bits."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelml import semconv
from otelml.proxy import parse
from otelml.proxy.extract import (
    NOT_JSON,
    Body,
    Extractor,
    _FastTable,
    _feature_names,
    _loads,
    _table,
)
from otelml.proxy.paths import MISSING, JsonPath
from otelml.proxy.rules import Features

TFS = {"rows": "$.instances[*]", "columnar": "$.inputs", "columns": ["age", "income"]}


def _both(rule: dict[str, Any], document: Any) -> tuple[Any, Any]:
    """(fast, general): each table as (arrays, scalars) and the problems it counted."""
    features = Features.model_validate(rule)
    fast = _FastTable.of(features)
    assert fast is not None
    name_of = _feature_names(features)
    out = []
    for quick in (fast, None):
        problems: Counter[str] = Counter()
        # a copy each: the general path pads short columns of the document in place
        table = _table(features, copy.deepcopy(document), name_of, problems, quick)
        out.append((table.arrays, table.scalars, dict(problems)))
    return out[0], out[1]


BODIES: list[Any] = [
    {"instances": [{"age": 31, "income": 5.5}, {"age": 47, "income": 6}]},
    {"instances": [[31, 5.5, "x"], [47, 6, "y"]]},
    {"instances": [{"age": 31}, {"income": 6}]},  # rows of differing keys
    {"instances": [[1, 2], [3]]},  # rows of differing widths
    {"instances": [{"age": 1}, [2]]},  # an object and a list
    {"instances": [1, 2, 3]},  # bare values
    {"instances": [None, {"age": 1}]},
    {"instances": []},
    {"instances": {"age": 1}},  # an object where rows are expected
    {"instances": "rows"},
    {"inputs": {"age": [1, 2], "income": [3.0, 4.0], "tenant": "acme"}},
    {"inputs": {"age": [1, 2], "income": [3.0]}},  # columns of differing lengths
    {"inputs": [[1, 2]]},
    {"inputs": 5},
    {"instances": [{"age": 1}], "inputs": {"age": [2]}},  # rows win
    {},
    [1, 2],
    "text",
    None,
    MISSING,
]


@pytest.mark.parametrize("document", BODIES)
@pytest.mark.parametrize(
    "rule",
    [
        TFS,
        {"rows": "$.instances[*]"},
        {"rows": "$.instances"},
        {"columnar": "$.inputs"},
        {"rows": "$[*]"},
        {**TFS, "include": ["age"]},
        {**TFS, "exclude": ["income", "tenant"]},
    ],
)
def test_the_fast_path_is_the_general_path(rule: dict[str, Any], document: Any) -> None:
    fast, general = _both(rule, document)
    assert fast == general


def test_the_fast_path_reads_tf_serving_bodies_exactly() -> None:
    rows = {"instances": [{"age": 31, "income": 5.5}, {"age": 47, "income": 6}]}
    assert _both(TFS, rows)[0] == ({"age": [31, 47], "income": [5.5, 6]}, {}, {})
    columnar = {"inputs": {"age": [1, 2], "tenant": "acme"}}
    assert _both(TFS, columnar)[0] == ({"age": [1, 2]}, {"tenant": "acme"}, {})
    missing = {"other": 1}
    assert _both(TFS, missing)[0] == ({}, {}, {"missing_field": 1})


def test_only_plain_key_rules_take_the_fast_path() -> None:
    def fast(rule: dict[str, Any]) -> bool:
        return _FastTable.of(Features.model_validate(rule)) is not None

    assert fast(TFS) and fast({"rows": "$.a.b[*]"}) and fast({"columnar": "$"})
    assert not fast({"rows": "$.instances[*].x"})  # a step past the wildcard
    assert not fast({"rows": "$.instances[0]"})
    assert not fast({"rows": "$['*'][*]"})  # a key that is literally *
    assert not fast({"columnar": "$.inputs[*]"})
    assert not fast({**TFS, "fields": {"age": "$.age"}})
    assert JsonPath.parse("$.a['b c'][*]").keys == ("a", "b c")
    assert JsonPath.parse("$[*][*]").keys is None


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(["instances", "inputs", "age", "income"]), inner)
        ),
        max_leaves=20,
    )
)
def test_the_fast_path_is_the_general_path_on_any_document(document: Any) -> None:
    for rule in (TFS, {"columnar": "$.inputs", "exclude": ["age"]}):
        fast, general = _both(rule, {"instances": document, "inputs": document})
        assert fast == general
        fast, general = _both(rule, document)
        assert fast == general


# --- JSON: orjson first, the standard library for what it refuses ---------------------------

ACCEPTED = [
    b'{"a": [1, 2.5, "x", true, null]}',
    b"[NaN, Infinity, -Infinity]",
    b"[1e400, -1e400]",
    b'["\\ud800", "\\udc00x"]',  # lone surrogates
    b"\xef\xbb\xbf[1]",  # a UTF-8 byte order mark (json.loads of bytes skips it)
    '{"a": "ü"}'.encode("utf-16"),
    '{"a": 1}'.encode("utf-32-le"),
    b'{"a": 1, "b": 2, "a": 3}',
    b"  [0.1, 1E2, -0.0, 1e-400]\n",
    b"[" * 900 + b"]" * 900,
]
REFUSED = [b"", b"{", b"[1] x", b'"\xff"', b"'a'", b"[" * 5000 + b"]" * 5000, b"\x00"]


@pytest.mark.parametrize("data", ACCEPTED)
def test_documents_read_as_the_standard_library_reads_them(data: bytes) -> None:
    problems: Counter[str] = Counter()
    # repr: NaN != NaN, and repr tells 1 from 1.0 and -0.0 from 0.0
    assert repr(_loads(data, problems)) == repr(json.loads(data))
    assert problems == Counter()


@pytest.mark.parametrize("data", REFUSED)
def test_what_neither_reads_is_counted_once(data: bytes) -> None:
    problems: Counter[str] = Counter()
    assert _loads(data, problems) is MISSING
    assert problems == Counter({NOT_JSON: 1})


def test_integers_past_64_bits_give_the_attributes_they_gave() -> None:
    """orjson reads them as doubles; an attribute holds them as doubles all the same."""
    big = [2**64 - 1, 2**64, -(2**63) - 1, 2**70]
    request = json.dumps({"instances": [{"a": v, "b": 1, "c": "x"} for v in big]}).encode()
    request = request[:-1] + b', "n": %d}' % 2**70
    rules = parse(
        {
            "routes": [
                {
                    "path": "/p",
                    "model": {"name": "m"},
                    "features": {"rows": "$.instances[*]"},
                    "slices": {"n": "$.n", "c": "$.instances[*].a"},
                }
            ]
        }
    )
    problems: Counter[str] = Counter()
    attributes = Extractor(rules.routes[0], rules.max_body_bytes, 128).extract(
        {}, Body(request), Body(b"{}"), {}, problems
    )
    as_doubles = [float(v) for v in big]
    assert attributes["ml.feature.a"] == as_doubles
    assert attributes["ml.feature.c"] == as_doubles
    assert attributes["ml.feature.n"] == float(2**70)
    assert problems == Counter()


def test_prediction_ids_keep_every_digit() -> None:
    rules = parse(
        {
            "routes": [
                {
                    "path": "/p",
                    "model": {"name": "m"},
                    "predictions": {"rows": "$.predictions[*]"},
                    "prediction_id": {"response": "$.ids[*]"},
                }
            ]
        }
    )
    extractor = Extractor(rules.routes[0], rules.max_body_bytes, 128)
    response = b'{"predictions": [1, 2, 3], "ids": [%d, 7, 1e20, "a"]}' % (2**70)
    problems: Counter[str] = Counter()
    attributes = extractor.extract({}, Body(b"{}"), Body(response), {}, problems)
    assert attributes[semconv.PREDICTION_ID] == [str(2**70), "7", "1e+20", "a"]
    assert attributes[semconv.PREDICTION] == [1, 2, 3]
    assert problems == Counter()
