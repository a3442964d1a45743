"""Bodies → ml.* attributes: tables of rows in every form, homogeneous arrays, exact counts of
every problem, and never an exception."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelml import semconv
from otelml.proxy import parse
from otelml.proxy.extract import Body, Extractor

F = semconv.FEATURE_PREFIX
P = semconv.PREDICTION_PREFIX


def _extract(
    route: dict[str, Any],
    request: Any,
    response: Any,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    max_attributes: int = 128,
) -> tuple[dict[str, Any], Counter[str]]:
    route = {"path": "/p", "model": {"name": "m", "version": "1"}, **route}
    rules = parse({"routes": [route]})
    problems: Counter[str] = Counter()

    def body(value: Any) -> Body:
        if isinstance(value, Body):
            return value
        return Body(value if isinstance(value, bytes) else json.dumps(value).encode())

    attributes = Extractor(rules.routes[0], rules.max_body_bytes, max_attributes).extract(
        params or {}, body(request), body(response), headers or {}, problems
    )
    return attributes, problems


TFS: dict[str, Any] = {
    "features": {
        "rows": "$.instances[*]",
        "columnar": "$.inputs",
        "columns": ["age", "income", "country"],
    },
    "predictions": {"rows": "$.predictions[*]", "columnar": "$.outputs"},
}


def test_tf_serving_row_objects() -> None:
    request = {
        "instances": [
            {"age": 31, "income": 52000.5, "country": "DE"},
            {"age": 47, "income": 61000, "country": "FR"},
        ]
    }
    attributes, problems = _extract(TFS, request, {"predictions": [[0.25], [0.75]]})
    assert attributes == {
        semconv.MODEL_NAME: "m",
        semconv.MODEL_VERSION: "1",
        F + "age": [31, 47],  # all ints: an int array
        F + "income": [52000.5, 61000.0],  # ints among doubles: doubles
        F + "country": ["DE", "FR"],
        semconv.PREDICTION: [0.25, 0.75],  # one output per row: the bare ml.prediction
    }
    assert not problems


def test_tf_serving_list_rows_are_named_by_columns_or_position() -> None:
    request = {"instances": [[31, 52000.5, "DE", 1], [47, 61000.0, "FR", 0]]}
    response = {"predictions": [[0.1, 0.9], [0.6, 0.4]]}
    attributes, problems = _extract(TFS, request, response)
    assert attributes[F + "age"] == [31, 47]
    assert attributes[F + "country"] == ["DE", "FR"]
    assert attributes[F + "3"] == [1, 0]  # past the named columns: by position
    assert attributes[P + "0"] == [0.1, 0.6]
    assert attributes[P + "1"] == [0.9, 0.4]
    assert not problems
    named = {**TFS, "predictions": {"rows": "$.predictions[*]", "outputs": ["stay", "churn"]}}
    attributes, _ = _extract(named, request, response)
    assert attributes[P + "churn"] == [0.9, 0.4]


def test_tf_serving_columnar_inputs_and_outputs() -> None:
    request = {"inputs": {"age": [31, 47, 22], "income": [1.5, 2.5, 3.5], "segment": "b2b"}}
    response = {"outputs": {"score": [0.1, 0.2, 0.3], "label": ["a", "b", "a"]}}
    attributes, problems = _extract(TFS, request, response)
    assert attributes[F + "age"] == [31, 47, 22]
    assert attributes[F + "segment"] == "b2b"  # a scalar applies to every row
    assert attributes[P + "score"] == [0.1, 0.2, 0.3]
    assert attributes[P + "label"] == ["a", "b", "a"]
    assert not problems
    # `outputs` as a plain list is rows, like `predictions`.
    attributes, problems = _extract(TFS, request, {"outputs": [[0.5], [0.6], [0.7]]})
    assert attributes[semconv.PREDICTION] == [0.5, 0.6, 0.7]
    assert not problems


def test_single_row_bodies_give_scalars() -> None:
    route = {
        "features": {"rows": "$", "exclude": ["request_id"]},
        "predictions": {"fields": {"score": "$.score", "label": "$.label"}},
        "prediction_id": {"response": "$.request_id"},
        "slices": {"tenant": {"header": "X-Tenant"}},
    }
    attributes, problems = _extract(
        route,
        {"age": 31, "country": "DE", "vip": True, "request_id": "r-1"},
        {"score": 0.71, "label": "churn", "request_id": "r-1"},
        headers={"x-tenant": "acme"},
    )
    assert attributes == {
        semconv.MODEL_NAME: "m",
        semconv.MODEL_VERSION: "1",
        F + "age": 31,
        F + "country": "DE",
        F + "vip": True,
        F + "tenant": "acme",
        P + "score": 0.71,
        P + "label": "churn",
        semconv.PREDICTION_ID: "r-1",
    }
    assert not problems


def test_model_name_and_version_from_the_path() -> None:
    route = {
        "path": "/v1/models/{model}/versions/{version}:predict",
        "model": {"name": "{model}", "version": "v{version}"},
        "predictions": {"rows": "$.predictions[*]"},
    }
    attributes, _ = _extract(
        route, {}, {"predictions": [1]}, params={"model": "churn", "version": "3"}
    )
    assert attributes[semconv.MODEL_NAME] == "churn"
    assert attributes[semconv.MODEL_VERSION] == "v3"


def test_values_that_cannot_be_sent_become_null_and_are_counted() -> None:
    request = {
        "instances": [
            {"age": 31, "country": "DE", "tags": ["x"], "flag": True},
            {"age": "old", "country": 7, "tags": 1, "flag": False},
            {"age": None, "country": "FR", "flag": True},  # null: missing, not counted here
            {"age": 2**70, "country": "US", "flag": 1.5},  # beyond int64: sent as a double
            {"country": "DE"},  # absent keys: null, not counted here
        ]
    }
    attributes, problems = _extract(TFS, request, {"predictions": [1, 2, 3, 4, 5]})
    assert attributes[F + "age"] == [31.0, None, None, float(2**70), None]
    assert attributes[F + "country"] == ["DE", None, "FR", "US", "DE"]
    assert attributes[F + "tags"] == [None, 1, None, None, None]  # 1 number beats 1 list
    assert attributes[F + "flag"] == [1.0, 0.0, 1.0, 1.5, None]
    # "old" among numbers, 7 among strings, ["x"] among numbers.
    assert problems == Counter({"wrong_type": 3})


def test_body_problems_are_counted_once_per_body() -> None:
    attributes, problems = _extract(TFS, b"not json {", b"<html>")
    assert problems == Counter({"not_json": 2})
    assert attributes == {semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1"}

    _, problems = _extract(TFS, Body(None), Body(None))  # bodies past max_body_bytes
    assert problems == Counter({"too_large": 2})

    _, problems = _extract(TFS, Body(b"\x1f\x8b garbage", "gzip"), Body(b"{}", "br"))
    assert problems == Counter({"bad_encoding": 2})

    request = Body(gzip.compress(json.dumps({"inputs": {"age": [1]}}).encode()), "gzip")
    attributes, problems = _extract(TFS, request, {"predictions": [0.5]})
    assert attributes[F + "age"] == [1]
    assert not problems

    _, problems = _extract(TFS, b"\xff\xfe\x00", b'{"predictions": [1] ')
    assert problems == Counter({"not_json": 2})


def test_a_gzip_bomb_is_too_large_not_a_memory_spike() -> None:
    bomb = gzip.compress(b'{"inputs": {"a": "' + b"x" * (8 * 1024**2) + b'"}}')
    rules = parse(
        {
            "max_body_bytes": "1MiB",
            "routes": [{"path": "/p", "model": {"name": "m"}, "features": TFS["features"]}],
        }
    )
    problems: Counter[str] = Counter()
    Extractor(rules.routes[0], rules.max_body_bytes, 128).extract(
        {}, Body(bomb, "gzip"), Body(b"{}"), {}, problems
    )
    assert problems == Counter({"too_large": 1})


def test_missing_and_mistyped_rule_paths() -> None:
    route = {
        **TFS,
        "prediction_id": {"response": "$.ids[*]"},
        "slices": {"tenant": {"header": "X-Tenant"}, "region": "$.meta.region"},
    }
    # Neither instances nor inputs (counted once), no predictions, no ids, no header,
    # meta is a string.
    attributes, problems = _extract(route, {"rows": []}, {"result": 1})
    assert problems == Counter({"missing_field": 5})
    assert attributes == {semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1"}

    attributes, problems = _extract(
        route, {"instances": {"age": 3}, "meta": "eu"}, {"predictions": 5, "ids": "x"}
    )
    # A wildcard over an object or a number, `ids[*]` over a string, `meta.region` on a
    # string: mistyped; the header is still missing.
    assert attributes == {semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1"}
    assert problems == Counter({"wrong_type": 4, "missing_field": 1})


def test_row_counts_that_disagree_are_counted() -> None:
    request = {"inputs": {"age": [1, 2, 3], "income": [1.0, 2.0]}}
    attributes, problems = _extract(TFS, request, {"predictions": [0.1, 0.2]})
    assert attributes[F + "income"] == [1.0, 2.0, None]  # padded to the longest column
    assert problems == Counter({"row_mismatch": 2})  # within the inputs; inputs vs outputs


def test_prediction_ids_per_row_and_slices_per_row() -> None:
    route = {
        "features": {**TFS["features"], "exclude": ["id"]},
        "predictions": TFS["predictions"],
        "prediction_id": "$.instances[*].id",
        "slices": {"country": "$.instances[*].country"},
    }
    request = {"instances": [{"id": 17, "age": 1}, {"id": "b", "age": 2, "country": "FR"}]}
    attributes, problems = _extract(route, request, {"predictions": [0, 1]})
    assert attributes[semconv.PREDICTION_ID] == ["17", "b"]
    assert attributes[F + "country"] == [None, "FR"]
    assert not problems


def test_features_past_the_attribute_limit_are_dropped_and_counted() -> None:
    row = {f"f{i}": i for i in range(40)}
    attributes, problems = _extract(
        TFS, {"instances": [row]}, {"predictions": [1]}, max_attributes=40
    )
    features = [k for k in attributes if k.startswith(F)]
    assert len(features) == 40 - 2 - 16  # model name/version and room for http.* and the id
    assert problems == Counter({"too_many_attributes": 40 - len(features)})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(request=JSON, response=JSON)
def test_any_json_extracts_without_raising_into_valid_attributes(
    request: Any, response: Any
) -> None:
    """Whatever the bodies hold: no exception, every array homogeneous (nulls aside)."""
    route = {**TFS, "slices": {"s": "$.instances[*].s"}, "prediction_id": {"response": "$.id"}}
    attributes, _ = _extract(route, request, response)
    for value in attributes.values():
        if isinstance(value, list):
            kinds = {type(v) for v in value if v is not None}
            assert len(kinds) <= 1, value
            assert kinds <= {bool, int, float, str}
        else:
            assert isinstance(value, bool | int | float | str)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a": ' * 50_000])
def test_deeply_nested_json_is_not_json_not_a_crash(body: bytes) -> None:
    _, problems = _extract(TFS, body, {"predictions": [1]})
    assert problems["not_json"] == 1
