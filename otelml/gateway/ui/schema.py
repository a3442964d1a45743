"""The shapes of the /api/v1 answers: typed dicts, checked by mypy and turned into OpenAPI.

Plain dicts are what the handlers build (cheap to serialise); pydantic only reads these types
to write the OpenAPI document's schemas, so the document and the code cannot disagree.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

Value = float | str | None


class SampleRef(TypedDict):
    """A recent request that put a value into a bucket."""

    trace_id: str
    span_id: str
    time: float
    row: int
    value: Value


class MovedBucket(TypedDict):
    index: int
    label: str
    reference_share: float
    current_share: float


class SeriesSummary(TypedDict):
    role: Literal["feature", "prediction"]
    name: str
    kind: Literal["numeric", "categorical"]
    #: The drift test and threshold (None: no reference profile, so no drift test).
    method: str | None
    threshold: float | None
    direction: Literal["above", "below"] | None
    score: float | None
    #: None: no verdict (no reference, or fewer observations than drift.min_samples).
    detected: bool | None
    observations: int
    #: Observations a window needs for a verdict (drift.min_samples).
    min_samples: int | None
    events: int
    moved_most: MovedBucket | None
    #: Over the current drift window (else since the gateway started).
    missing_rate: float | None
    invalid_rate: float | None


class PerformancePoint(TypedDict):
    time: float
    #: Predictions joined with their ground truth that this point rests on.
    labels: int
    metrics: dict[str, float]


class PerformanceSeries(TypedDict):
    output: str
    current: PerformancePoint | None
    history: list[PerformancePoint]


class ModelSummary(TypedDict):
    model: str
    version: str
    features: int
    predictions: int
    drifting: list[str]
    without_verdict: int
    segments: list[str]


class ModelsResponse(TypedDict):
    models: list[ModelSummary]
    time: float


class SegmentOption(TypedDict):
    feature: str
    values: list[str]


class ModelDetail(TypedDict):
    model: str
    version: str
    segment: str | None
    segments: list[SegmentOption]
    series: list[SeriesSummary]
    performance: list[PerformanceSeries]
    time: float


class Bucket(TypedDict):
    index: int
    label: str
    lower: float | None
    upper: float | None
    reference: int
    reference_share: float
    current: int
    current_share: float
    samples: list[SampleRef]


class HistoryPoint(TypedDict):
    time: float
    score: float | None
    detected: bool | None
    observations: int


class DriftEventOut(TypedDict):
    time: float
    score: float | None
    bucket: int
    label: str
    reference_share: float
    current_share: float
    trace_id: str | None
    samples: list[SampleRef]


class AttributionSlice(TypedDict):
    """One slice of the traffic (a trace attribute's value) and how much of the drift it carries."""

    key: str
    value: str
    #: Share of the window's drift score that leaving this slice out removes (0–1).
    explained: float
    #: The slice's share of the window's observations.
    traffic_share: float
    #: The slice alone against the reference (the series' drift method).
    slice_score: float
    window_observations: int
    #: A recent trace of this slice.
    trace_id: str | None


class EstimateOut(TypedDict):
    value: float
    #: Sampling uncertainty of the estimate (one standard error).
    stderr: float


class SeriesDetail(TypedDict):
    model: str
    version: str
    segment: str | None
    summary: SeriesSummary
    #: What `current` counts: the drift window, or everything since the gateway started.
    current: Literal["drift_window", "since_start"]
    window_seconds: float | None
    step_seconds: float | None
    buckets: list[Bucket]
    scores: dict[str, float]
    history: list[HistoryPoint]
    events: list[DriftEventOut]
    missing_total: int
    invalid_total: dict[str, int]
    #: While the series drifts: the slices of traffic that explain it, ranked per key.
    attribution: list[AttributionSlice]
    #: Label-free performance of a calibrated probability output over the window, by metric.
    estimated: dict[str, EstimateOut]


class RequestRow(TypedDict):
    row: int
    time: float
    span_id: str
    features: dict[str, Value]
    predictions: dict[str, Value]


class RequestDetail(TypedDict):
    trace_id: str
    model: str
    version: str
    rows: list[RequestRow]
    #: Grafana Explore on this trace (when ui.grafana_url is configured).
    grafana_url: str | None


class Info(TypedDict):
    version: str
    auth: bool
    grafana_url: str | None


class Problem(TypedDict):
    error: str
