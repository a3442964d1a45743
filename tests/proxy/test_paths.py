"""The JSONPath-like selector: grammar, row alignment past a wildcard, what counts as an error."""

from __future__ import annotations

import pytest

from otelml.proxy.paths import MISSING, JsonPath, PathError, SelectError

DOC = {
    "instances": [
        {"age": 31, "income": 52000.5, "tags": ["a", "b"]},
        {"age": 47},
        [1, 2, 3],
    ],
    "inputs": {"age": [1, 2], "odd key": {"x.y": 7}, "*": "star"},
    "predictions": [[0.1, 0.9], [0.7, 0.3]],
    "id": "req-1",
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("$.id", "req-1"),
        ("$.inputs.age", [1, 2]),
        ("$.inputs.age[1]", 2),
        ("$.inputs.age[-1]", 2),
        ("$['inputs']['odd key']['x.y']", 7),
        ('$["inputs"]["odd key"]["x.y"]', 7),
        ("$.inputs['*']", "star"),
        ("$.predictions[*]", [[0.1, 0.9], [0.7, 0.3]]),
        ("$.predictions[*][1]", [0.9, 0.3]),
        ("$.predictions.*[0]", [0.1, 0.7]),
        # Past a wildcard, a row that lacks the rest (or has another shape) is MISSING:
        # rows stay aligned with the other columns.
        ("$.instances[*].age", [31, 47, MISSING]),
        ("$.instances[*].income", [52000.5, MISSING, MISSING]),
        # Two wildcards flatten.
        ("$.predictions[*][*]", [0.1, 0.9, 0.7, 0.3]),
        ("$.instances[*].tags[*]", ["a", "b", MISSING, MISSING]),
    ],
)
def test_select(path: str, expected: object) -> None:
    assert JsonPath.parse(path).select(DOC) == expected


def test_many_is_true_only_with_a_wildcard() -> None:
    assert JsonPath.parse("$.instances[*].age").many
    assert not JsonPath.parse("$.instances[0].age").many
    assert not JsonPath.parse("$.inputs['*']").many


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("$.nothing", "missing_field"),
        ("$.nothing.deeper", "missing_field"),
        ("$.nothing[*]", "missing_field"),
        ("$.id.x", "wrong_type"),  # a key into a string
        ("$.id[0]", "wrong_type"),  # an index into a string
        ("$.inputs[*]", "wrong_type"),  # a wildcard over an object
        ("$.inputs.age[7]", "missing_field"),
    ],
)
def test_before_the_first_wildcard_a_mismatch_is_an_error_with_a_reason(
    path: str, reason: str
) -> None:
    with pytest.raises(SelectError) as error:
        JsonPath.parse(path).select(DOC)
    assert error.value.reason == reason


@pytest.mark.parametrize(
    "text",
    ["instances", "$.", "$..a", "$.a[", "$.a['b'", "$.a['b'x]", "$[x]", "$.a b", "$.1st"],
)
def test_malformed_paths_are_refused(text: str) -> None:
    with pytest.raises(PathError):
        JsonPath.parse(text)


def test_escaped_quotes_in_keys() -> None:
    assert JsonPath.parse(r"$['it\'s']").select({"it's": 1}) == 1
