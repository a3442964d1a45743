"""The keys of every series: which model (and slice of it), which feature or output.

Also how a key becomes exposition labels: `model`, `model_version`, `feature`|`output`, and
`segment`/`segment_value` for the per-slice series of a segmented model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

from otelml import semconv
from otelml.gateway.state.families import Labels
from otelml.profile import Profile

Role = Literal["feature", "prediction"]


class ModelKey(NamedTuple):
    model: str
    version: str
    #: (segment feature, its value) for the per-slice series of a segmented model.
    segment: tuple[str, str] | None = None

    @property
    def whole(self) -> ModelKey:
        """The model itself, without the segment."""
        return ModelKey(self.model, self.version)


class SeriesKey(NamedTuple):
    role: Role
    name: str


@dataclass(frozen=True)
class AttributionSettings:
    """Which trace attributes slice a model's drift, and how many slices are kept and shown."""

    keys: tuple[str, ...] = semconv.DEFAULT_ATTRIBUTION_KEYS
    #: Distinct values per key with their own slot (then `__other__`).
    values: int = 8
    #: Slices exposed per (drifting series, key), best-explaining first.
    top: int = 3


@dataclass(frozen=True)
class ModelProfile:
    """A configured model: which versions it matches and its reference profile."""

    name: str
    version: str | None
    profile: Profile | None
    #: Categorical features whose values slice every series of the model.
    segments: tuple[str, ...] = ()
    #: Drift attribution by trace attributes (None: off).
    attribution: AttributionSettings | None = None

    def matches(self, key: ModelKey) -> bool:
        return self.name == key.model and (self.version is None or self.version == key.version)


@lru_cache(maxsize=16_384)
def series_labels(model: ModelKey, series: SeriesKey) -> Labels:
    # Cached (bounded): every scrape asks again for the same few thousand label sets.
    name_label = semconv.LABEL_FEATURE if series.role == "feature" else semconv.LABEL_OUTPUT
    labels: Labels = (
        (semconv.LABEL_MODEL, model.model),
        (semconv.LABEL_MODEL_VERSION, model.version),
        (name_label, series.name),
    )
    if model.segment is not None:
        labels += (
            (semconv.LABEL_SEGMENT, model.segment[0]),
            (semconv.LABEL_SEGMENT_VALUE, model.segment[1]),
        )
    return labels
