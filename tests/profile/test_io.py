"""Saving, loading and validating profile files; reading training tables."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from otelml.profile import NumericProfile, Profile, ProfileError, build, load, read_table, save
from otelml.profile.io import from_dict, to_dict

Mutation = Callable[[dict[str, Any]], object]


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20, 30, 40, 50, 60, None],
            "plan": ["a", "b", "a", "c", "a", None],
            "active": [True, False, True, True, False, True],
            "score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        }
    )


@pytest.fixture
def profile(table: pd.DataFrame) -> Profile:
    return build(table, model="churn", version="3", predictions=["score"], bins=4)


@pytest.fixture
def document(profile: Profile) -> dict[str, Any]:
    return to_dict(profile)


# --- round trips ------------------------------------------------------------------------------


def test_save_load_round_trip(profile: Profile, tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    save(profile, path)
    loaded = load(path)
    assert loaded == profile
    assert loaded.features["plan"] == profile.features["plan"]
    assert [p.name for p in tmp_path.iterdir()] == ["profile.json"]  # no temporary file left


def test_round_trip_keeps_none_vocabulary_and_names(table: pd.DataFrame, tmp_path: Path) -> None:
    profile = build(table.rename(columns={"plan": "plan type"}), vocabulary_limit=1)
    save(profile, tmp_path / "p.json")
    loaded = load(str(tmp_path / "p.json"))
    assert loaded == profile
    assert loaded.features["plan type"].name == "plan type"
    assert loaded.features["plan type"].vocabulary is None  # type: ignore[union-attr]


def test_dict_round_trip(profile: Profile) -> None:
    assert from_dict(to_dict(profile)) == profile


def test_file_layout(profile: Profile, tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    save(profile, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data) == [
        "format",
        "format_version",
        "model",
        "version",
        "rows",
        "created",
        "features",
        "predictions",
    ]
    assert (data["format"], data["format_version"]) == ("otelml.profile", 1)
    assert (data["model"], data["version"], data["rows"]) == ("churn", "3", 6)
    assert list(data["features"]) == ["age", "plan", "active"]
    assert data["features"]["age"] == {
        "kind": "numeric",
        "edges": [20.0, 30.0, 40.0, 50.0, 60.0],
        "counts": [1, 1, 1, 1, 1, 0],
        "count": 5,
        "missing": 1,
        "min": 20.0,
        "max": 60.0,
        "mean": 40.0,
        "std": pytest.approx(np.std([20, 30, 40, 50, 60], ddof=1)),
        "unique": 5,
        "bucket_means": [20.0, 30.0, 40.0, 50.0, 60.0, None],
    }
    assert data["features"]["plan"] == {
        "kind": "categorical",
        "categories": ["a", "b", "c"],
        "counts": [3, 1, 1, 0],
        "count": 5,
        "missing": 1,
        "unique": 3,
        "vocabulary": ["a", "b", "c"],
    }
    assert data["features"]["active"]["categories"] == ["true", "false"]
    assert list(data["predictions"]) == ["score"]
    assert path.read_text(encoding="utf-8").endswith("}\n")


def test_save_refuses_an_invalid_profile(profile: Profile, tmp_path: Path) -> None:
    age = profile.features["age"]
    assert isinstance(age, NumericProfile)
    broken = dataclasses.replace(
        profile, features={**profile.features, "age": dataclasses.replace(age, edges=(2.0, 1.0))}
    )
    with pytest.raises(ProfileError, match=r"features\.age\.edges: must be strictly increasing"):
        save(broken, tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


# --- validation -------------------------------------------------------------------------------


def setter(*path: str | int, value: object) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def remover(*path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


AGE = ("features", "age")
PLAN = ("features", "plan")

INVALID: list[tuple[str, Mutation, str]] = [
    ("format", setter("format", value="other"), "format: must be 'otelml.profile', got 'other'"),
    ("no format", remover("format"), "format: must be 'otelml.profile', got nothing"),
    (
        "version",
        setter("format_version", value=2),
        "format_version: unsupported version 2, this otelml reads 1",
    ),
    (
        "bool version",
        setter("format_version", value=True),
        "format_version: unsupported version True, this otelml reads 1",
    ),
    ("unknown key", setter("colour", value="red"), "colour: extra inputs are not permitted"),
    (
        "unknown column key",
        setter(*AGE, "colour", value=1),
        "features.age.colour: extra inputs are not permitted",
    ),
    ("missing key", remover("rows"), "rows: field required"),
    (
        "missing column key",
        remover(*PLAN, "vocabulary"),
        "features.plan.vocabulary: field required",
    ),
    ("rows", setter("rows", value=0), "rows: input should be greater than 0"),
    ("model type", setter("model", value=3), "model: input should be a valid string"),
    (
        "created",
        setter("created", value="yesterday"),
        "created: must be an ISO-8601 timestamp, got 'yesterday'",
    ),
    (
        "created tz",
        setter("created", value="2024-05-01T10:00:00+02:00"),
        "created: must be in UTC (end in 'Z' or '+00:00'), got '2024-05-01T10:00:00+02:00'",
    ),
    (
        "kind",
        setter(*AGE, "kind", value="weird"),
        "features.age: input tag 'weird' found using 'kind' does not match any of the expected "
        "tags: 'numeric', 'categorical'",
    ),
    (
        "column type",
        setter(*AGE, value=[]),
        "features.age: input should be a valid dictionary or object to extract fields from",
    ),
    (
        "edges decreasing",
        setter(*AGE, "edges", value=[20.0, 40.0, 30.0, 50.0, 60.0]),
        "features.age.edges: must be strictly increasing",
    ),
    (
        "edges repeated",
        setter(*AGE, "edges", value=[20.0, 30.0, 30.0, 50.0, 60.0]),
        "features.age.edges: must be strictly increasing",
    ),
    (
        "edges nan",
        setter(*AGE, "edges", 1, value=float("nan")),
        "features.age.edges[1]: input should be a finite number",
    ),
    (
        "edges inf",
        setter(*AGE, "edges", 4, value=float("inf")),
        "features.age.edges[4]: input should be a finite number",
    ),
    (
        "edges empty",
        setter(*AGE, "edges", value=[]),
        "features.age.edges: list should have at least 1 item after validation, not 0",
    ),
    (
        "edges type",
        setter(*AGE, "edges", 0, value="20"),
        "features.age.edges[0]: input should be a valid number",
    ),
    (
        "numeric counts length",
        setter(*AGE, "counts", value=[1, 1, 1, 1, 1]),
        "features.age.counts: must have len(edges) + 1 = 6 entries, got 5",
    ),
    (
        "negative count",
        setter(*AGE, "counts", value=[-1, 2, 1, 1, 1, 0]),
        "features.age.counts[0]: input should be greater than or equal to 0",
    ),
    (
        "count not sum",
        setter(*AGE, "counts", value=[1, 1, 1, 1, 1, 1]),
        "features.age.count: must equal the sum of counts (6)",
    ),
    (
        "count float",
        setter(*AGE, "count", value=5.0),
        "features.age.count: input should be a valid integer",
    ),
    (
        "count bool",
        setter(*AGE, "missing", value=True),
        "features.age.missing: input should be a valid integer",
    ),
    ("max below min", setter(*AGE, "max", value=10.0), "features.age.max: must be >= min (20.0)"),
    (
        "negative std",
        setter(*AGE, "std", value=-1.0),
        "features.age.std: input should be greater than or equal to 0",
    ),
    (
        "unique above count",
        setter(*AGE, "unique", value=6),
        "features.age.unique: must be <= count (5)",
    ),
    (
        "duplicate categories",
        setter(*PLAN, "categories", value=["a", "a", "c"]),
        "features.plan.categories: must not contain duplicates",
    ),
    (
        "reserved category",
        setter(*PLAN, "categories", value=["a", "__other__", "c"]),
        "features.plan.categories: '__other__' is reserved for everything else",
    ),
    (
        "categorical counts length",
        setter(*PLAN, "counts", value=[3, 1, 1]),
        "features.plan.counts: must have len(categories) + 1 = 4 entries, got 3",
    ),
    (
        "categorical negative",
        setter(*PLAN, "counts", 3, value=-1),
        "features.plan.counts[3]: input should be greater than or equal to 0",
    ),
    (
        "categorical sum",
        setter(*PLAN, "count", value=4),
        "features.plan.count: must equal the sum of counts (5)",
    ),
    (
        "unique below categories",
        setter(*PLAN, "unique", value=2),
        "features.plan.unique: must be >= the number of categories (3)",
    ),
    (
        "vocabulary order",
        setter(*PLAN, "vocabulary", value=["b", "a", "c"]),
        "features.plan.vocabulary: must be sorted and without duplicates",
    ),
    (
        "vocabulary size",
        setter(*PLAN, "vocabulary", value=["a", "b", "c", "d"]),
        "features.plan.vocabulary: must list all 3 distinct values, got 4",
    ),
    (
        "vocabulary content",
        setter(*PLAN, "vocabulary", value=["a", "b", "z"]),
        "features.plan.vocabulary: lacks categories ['c']",
    ),
    ("rows mismatch", setter("rows", value=7), "features.age: count + missing = 6, but rows = 7"),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_documents_are_rejected_with_their_path(
    document: dict[str, Any], mutate: Mutation, message: str
) -> None:
    broken = copy.deepcopy(document)
    mutate(broken)
    with pytest.raises(ProfileError) as info:
        from_dict(broken)
    assert str(info.value) == message


def test_prediction_may_not_also_be_a_feature(document: dict[str, Any]) -> None:
    document["predictions"]["age"] = document["features"]["age"]
    with pytest.raises(ProfileError, match=r"^predictions\.age: also listed under features$"):
        from_dict(document)


def test_profile_without_columns_is_rejected(document: dict[str, Any]) -> None:
    document["features"], document["predictions"] = {}, {}
    with pytest.raises(ProfileError, match=r"^\$: features and predictions are both empty$"):
        from_dict(document)


def test_document_must_be_an_object() -> None:
    with pytest.raises(ProfileError, match=r"^\$: must be a JSON object, got list$"):
        from_dict([])


def test_odd_column_names_are_quoted_in_paths(document: dict[str, Any]) -> None:
    document["features"]["my col"] = document["features"].pop("age")
    document["features"]["my col"]["edges"].reverse()
    with pytest.raises(ProfileError) as info:
        from_dict(document)
    assert str(info.value) == 'features["my col"].edges: must be strictly increasing'


def test_every_error_is_reported(document: dict[str, Any]) -> None:
    document["features"]["age"]["std"] = -1.0
    document["features"]["plan"]["categories"] = ["a", "a", "c"]
    with pytest.raises(ProfileError) as info:
        from_dict(document)
    assert str(info.value) == (
        "features.age.std: input should be greater than or equal to 0; "
        "features.plan.categories: must not contain duplicates"
    )


def test_load_prefixes_the_file(document: dict[str, Any], tmp_path: Path) -> None:
    document["features"]["age"]["edges"].reverse()
    path = tmp_path / "p.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load(path)
    assert str(info.value) == f"{path}: features.age.edges: must be strictly increasing"


def test_load_rejects_nan_written_by_other_tools(document: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(document).replace('"mean": 40.0', '"mean": NaN'), encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load(path)
    assert str(info.value) == f"{path}: features.age.mean: input should be a finite number"


def test_load_rejects_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"p\.json: not valid JSON: Expecting property name"):
        load(path)


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"nope\.json: cannot read profile: .*No such file"):
        load(tmp_path / "nope.json")


# --- training tables --------------------------------------------------------------------------


def test_csv_and_parquet_give_the_same_table_and_profile(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    table.to_csv(tmp_path / "train.csv", index=False)
    table.to_parquet(tmp_path / "train.PARQUET", engine="pyarrow", index=False)
    from_csv = read_table(tmp_path / "train.csv")
    from_parquet = read_table(str(tmp_path / "train.PARQUET"))
    assert list(from_csv.columns) == list(from_parquet.columns) == list(table.columns)
    for column in ("age", "plan", "active", "score"):
        assert from_csv[column].equals(from_parquet[column]), column
    assert from_csv["age"].tolist()[:5] == [20, 30, 40, 50, 60]
    assert from_csv["active"].tolist() == table["active"].tolist()
    a = build(from_csv, predictions=["score"])
    b = build(from_parquet, predictions=["score"])
    assert dataclasses.replace(a, created="") == dataclasses.replace(b, created="")


def test_read_table_rejects_other_formats(tmp_path: Path) -> None:
    (tmp_path / "train.xlsx").write_bytes(b"")
    with pytest.raises(ProfileError, match=r"unsupported table format '\.xlsx', expected "):
        read_table(tmp_path / "train.xlsx")
    with pytest.raises(ProfileError, match=r"unsupported table format '\(no suffix\)'"):
        read_table(tmp_path / "train")


def test_read_table_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"train\.csv: no such file$"):
        read_table(tmp_path / "train.csv")


def test_read_table_reports_unreadable_content(tmp_path: Path) -> None:
    (tmp_path / "train.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ProfileError, match=r"train\.parquet: cannot read table: "):
        read_table(tmp_path / "train.parquet")
    with pytest.raises(ProfileError, match=r"empty\.csv: cannot read table: "):
        read_table(tmp_path / "empty.csv")


def test_documented_example_is_a_valid_profile() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "profile-format.md"
    text = doc.read_text(encoding="utf-8")
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    profile = from_dict(json.loads(example))
    age = profile.features["age"]
    assert isinstance(age, NumericProfile)
    values = pd.DataFrame({"age": [23, 31, 31, 38, 45, 52, 60, None]})
    rebuilt = build(values, bins=4).features["age"]
    assert rebuilt == age
