"""The reference profile as plain frozen values.

Kept free of pandas and pydantic so the gateway can hold and compare profiles without
importing the training-side stack; building lives in :mod:`.build`, JSON in :mod:`.io`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: Version of the in-memory model and of the JSON format written by :mod:`.io`.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class NumericProfile:
    """Histogram and moments of a numeric column.

    ``edges`` are strictly increasing finite bucket upper bounds with Prometheus ``le``
    semantics (see :func:`.binning.bucket_index`): bucket ``i`` holds
    ``edges[i-1] < v <= edges[i]``, bucket 0 also everything ``<= edges[0]`` and the extra
    last bucket (``+Inf``) everything ``> edges[-1]``. ``counts`` has ``len(edges) + 1``
    entries. ``std`` is the sample standard deviation (ddof=1), 0.0 for a single value.
    ±inf values are counted as ``missing``, like null and NaN.
    """

    name: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    missing: int
    min: float
    max: float
    mean: float
    std: float
    unique: int
    kind: Literal["numeric"] = "numeric"
    #: Mean of the reference values in each bucket (None where empty): where a bucket's mass
    #: sits, for binned distances (a skewed tail's midpoint would exaggerate them). Absent in
    #: profiles written before it existed.
    bucket_means: tuple[float | None, ...] | None = None


@dataclass(frozen=True)
class CategoricalProfile:
    """Top-K category counts of a categorical column.

    ``categories`` are the top-K labels by count (descending, ties by label); ``counts``
    has one extra last entry for everything else (``semconv.OTHER_CATEGORY``).
    ``vocabulary`` lists every distinct label, sorted, when there are at most
    ``vocabulary_limit`` of them, so the gateway can flag unknown categories; ``None``
    means the vocabulary was too large to keep and is unknown.
    """

    name: str
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    count: int
    missing: int
    unique: int
    vocabulary: tuple[str, ...] | None
    kind: Literal["categorical"] = "categorical"


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Calibration:
    """A binary classifier's probability output calibrated on the reference's labels.

    ``positive_rate`` has one entry per bucket of the output's ``NumericProfile`` (whose
    edges include ``threshold``): the reference's isotonic positive rate there. A prediction
    is positive when its probability is above ``threshold``.
    """

    target: str
    threshold: float
    positive_rate: tuple[float, ...]


@dataclass(frozen=True)
class Profile:
    """Everything the gateway needs to know about a model's training data.

    ``features`` are the model inputs and ``predictions`` its outputs, both keyed by
    column (output) name. ``rows`` is the number of rows of the training table, so for
    every column ``count + missing == rows``. ``created`` is an ISO-8601 UTC timestamp.
    """

    model: str | None
    version: str | None
    rows: int
    created: str
    features: Mapping[str, FeatureProfile]
    predictions: Mapping[str, FeatureProfile]
    format_version: int = FORMAT_VERSION
    #: Per probability output, its calibration (profiles built with a target).
    calibration: Mapping[str, Calibration] = field(default_factory=dict)
