"""Validation layer of the JSON format: nothing unchecked reaches a :class:`~.model.Profile`.

The gateway bins live traffic on whatever a profile file says, so a hand-edited or
corrupted file must fail loudly at load time, naming the JSON path at fault. Pydantic
(strict, unknown keys forbidden) checks shapes and types; the validators below check the
invariants between fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from otelml.profile.errors import ProfileError
from otelml.profile.model import (
    FORMAT_VERSION,
    Calibration,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    Profile,
)
from otelml.semconv import OTHER_CATEGORY

#: Value of the top-level ``format`` key of every profile file.
FORMAT_NAME = "otelml.profile"
_SECTIONS = ("features", "predictions")
_MAX_REPORTED = 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Numeric(_Strict):
    kind: Literal["numeric"]
    edges: Annotated[list[FiniteFloat], Field(min_length=1)]
    counts: list[NonNegativeInt]
    count: PositiveInt
    missing: NonNegativeInt
    min: FiniteFloat
    max: FiniteFloat
    mean: FiniteFloat
    std: Annotated[FiniteFloat, Field(ge=0)]
    unique: PositiveInt
    bucket_means: list[FiniteFloat | None] | None = None

    @field_validator("edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if any(b <= a for a, b in pairwise(edges)):
            raise ValueError("must be strictly increasing")
        return edges

    @field_validator("counts")
    @classmethod
    def _one_per_bucket(cls, counts: list[int], info: ValidationInfo) -> list[int]:
        edges = info.data.get("edges")
        if edges is not None and len(counts) != len(edges) + 1:
            raise ValueError(
                f"must have len(edges) + 1 = {len(edges) + 1} entries, got {len(counts)}"
            )
        return counts

    @field_validator("count")
    @classmethod
    def _sum_of_counts(cls, count: int, info: ValidationInfo) -> int:
        return _check_sum(count, info)

    @field_validator("bucket_means")
    @classmethod
    def _one_mean_per_bucket(
        cls, means: list[float | None] | None, info: ValidationInfo
    ) -> list[float | None] | None:
        counts = info.data.get("counts")
        if means is not None and counts is not None and len(means) != len(counts):
            raise ValueError(f"must have one entry per bucket ({len(counts)}), got {len(means)}")
        return means

    @field_validator("max")
    @classmethod
    def _not_below_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min")
        if low is not None and value < low:
            raise ValueError(f"must be >= min ({low})")
        return value

    @field_validator("unique")
    @classmethod
    def _at_most_count(cls, unique: int, info: ValidationInfo) -> int:
        return _check_unique(unique, info)


class _Categorical(_Strict):
    kind: Literal["categorical"]
    categories: list[str]
    counts: list[NonNegativeInt]
    count: PositiveInt
    missing: NonNegativeInt
    unique: PositiveInt
    vocabulary: list[str] | None

    @field_validator("categories")
    @classmethod
    def _distinct(cls, categories: list[str]) -> list[str]:
        if len(set(categories)) != len(categories):
            raise ValueError("must not contain duplicates")
        if OTHER_CATEGORY in categories:
            raise ValueError(f"{OTHER_CATEGORY!r} is reserved for everything else")
        return categories

    @field_validator("counts")
    @classmethod
    def _one_per_category(cls, counts: list[int], info: ValidationInfo) -> list[int]:
        categories = info.data.get("categories")
        if categories is not None and len(counts) != len(categories) + 1:
            raise ValueError(
                f"must have len(categories) + 1 = {len(categories) + 1} entries, got {len(counts)}"
            )
        return counts

    @field_validator("count")
    @classmethod
    def _sum_of_counts(cls, count: int, info: ValidationInfo) -> int:
        return _check_sum(count, info)

    @field_validator("unique")
    @classmethod
    def _between_categories_and_count(cls, unique: int, info: ValidationInfo) -> int:
        categories = info.data.get("categories")
        if categories is not None and unique < len(categories):
            raise ValueError(f"must be >= the number of categories ({len(categories)})")
        return _check_unique(unique, info)

    @field_validator("vocabulary")
    @classmethod
    def _complete(cls, vocabulary: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if vocabulary is None:
            return None
        if any(b <= a for a, b in pairwise(vocabulary)):
            raise ValueError("must be sorted and without duplicates")
        unique = info.data.get("unique")
        if unique is not None and len(vocabulary) != unique:
            raise ValueError(f"must list all {unique} distinct values, got {len(vocabulary)}")
        missing = sorted(set(info.data.get("categories") or ()) - set(vocabulary))
        if missing:
            raise ValueError(f"lacks categories {missing}")
        return vocabulary


def _check_sum(count: int, info: ValidationInfo) -> int:
    counts = info.data.get("counts")
    if counts is not None and sum(counts) != count:
        raise ValueError(f"must equal the sum of counts ({sum(counts)})")
    return count


def _check_unique(unique: int, info: ValidationInfo) -> int:
    count = info.data.get("count")
    if count is not None and unique > count:
        raise ValueError(f"must be <= count ({count})")
    return unique


_Feature = Annotated[_Numeric | _Categorical, Field(discriminator="kind")]


class _Calibration(_Strict):
    target: str
    threshold: Annotated[FiniteFloat, Field(gt=0, lt=1)]
    positive_rate: list[Annotated[FiniteFloat, Field(ge=0, le=1)]]


class _Profile(_Strict):
    format: Literal["otelml.profile"]
    format_version: Literal[1]
    model: str | None
    version: str | None
    rows: PositiveInt
    created: str
    features: dict[str, _Feature]
    predictions: dict[str, _Feature]
    calibration: dict[str, _Calibration] = {}

    @field_validator("created")
    @classmethod
    def _iso_utc(cls, created: str) -> str:
        # Python 3.10's fromisoformat does not read the "Z" suffix.
        text = created[:-1] + "+00:00" if created.endswith("Z") else created
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"must be an ISO-8601 timestamp, got {created!r}") from None
        if moment.utcoffset() != timedelta(0):
            raise ValueError(f"must be in UTC (end in 'Z' or '+00:00'), got {created!r}")
        return created


def parse(data: object) -> Profile:
    """Validate a decoded JSON document and return the profile it describes."""
    _check_header(data)
    try:
        checked = _Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(_describe(exc)) from None
    _check_columns(checked)
    return Profile(
        model=checked.model,
        version=checked.version,
        rows=checked.rows,
        created=checked.created,
        features=_convert(checked.features),
        predictions=_convert(checked.predictions),
        format_version=checked.format_version,
        calibration={
            name: Calibration(c.target, c.threshold, tuple(c.positive_rate))
            for name, c in checked.calibration.items()
        },
    )


def _check_header(data: object) -> None:
    """Format and version first: a newer or foreign file must say so, not list 20 errors."""
    if not isinstance(data, dict):
        raise ProfileError(f"$: must be a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT_NAME:
        found = repr(data["format"]) if "format" in data else "nothing"
        raise ProfileError(f"format: must be {FORMAT_NAME!r}, got {found}")
    version = data.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ProfileError(
            f"format_version: unsupported version {version!r}, this otelml reads {FORMAT_VERSION}"
        )


def _check_calibration(checked: _Profile) -> None:
    for name, calibration in checked.calibration.items():
        output = checked.predictions.get(name)
        where = _path(("calibration", name))
        if not isinstance(output, _Numeric):
            raise ProfileError(f"{where}: not a numeric prediction output")
        if len(calibration.positive_rate) != len(output.counts):
            raise ProfileError(
                f"{where}.positive_rate: must have one entry per bucket of the output "
                f"({len(output.counts)}), got {len(calibration.positive_rate)}"
            )
        if calibration.threshold not in output.edges:
            raise ProfileError(f"{where}.threshold: must be one of the output's edges")


def _check_columns(checked: _Profile) -> None:
    _check_calibration(checked)
    if not checked.features and not checked.predictions:
        raise ProfileError("$: features and predictions are both empty")
    for name in checked.predictions:
        if name in checked.features:
            raise ProfileError(f"{_path(('predictions', name))}: also listed under features")
    for section in _SECTIONS:
        columns: dict[str, _Numeric | _Categorical] = getattr(checked, section)
        for name, column in columns.items():
            if column.count + column.missing != checked.rows:
                raise ProfileError(
                    f"{_path((section, name))}: count + missing = "
                    f"{column.count + column.missing}, but rows = {checked.rows}"
                )


def _convert(columns: Mapping[str, _Numeric | _Categorical]) -> dict[str, FeatureProfile]:
    converted: dict[str, FeatureProfile] = {}
    for name, c in columns.items():
        if isinstance(c, _Numeric):
            converted[name] = NumericProfile(
                name=name,
                edges=tuple(c.edges),
                counts=tuple(c.counts),
                count=c.count,
                missing=c.missing,
                min=c.min,
                max=c.max,
                mean=c.mean,
                std=c.std,
                unique=c.unique,
                bucket_means=None if c.bucket_means is None else tuple(c.bucket_means),
            )
        else:
            converted[name] = CategoricalProfile(
                name=name,
                categories=tuple(c.categories),
                counts=tuple(c.counts),
                count=c.count,
                missing=c.missing,
                unique=c.unique,
                vocabulary=None if c.vocabulary is None else tuple(c.vocabulary),
            )
    return converted


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    lines = [f"{_path(_json_loc(e['loc']))}: {_message(e['msg'])}" for e in errors]
    if len(lines) > _MAX_REPORTED:
        lines[_MAX_REPORTED:] = [f"... and {len(lines) - _MAX_REPORTED} more errors"]
    return "; ".join(lines)


def _json_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop the union tag pydantic inserts after ``features.<name>``/``predictions.<name>``."""
    if len(loc) > 2 and loc[0] in _SECTIONS and loc[2] in ("numeric", "categorical"):
        return loc[:2] + loc[3:]
    return loc


def _path(loc: tuple[int | str, ...]) -> str:
    """``features.age.edges[2]``; keys that are not identifiers are quoted: ``features["a b"]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]" if path else f"$[{json.dumps(part)}]"
    return path or "$"


def _message(msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]
