"""What receivers hand requests to: the `Consumer` interface and what it answers.

Receivers know this module only — not the pipeline behind it, not any connector or exporter —
and map an `ExportResult` (or a raised `Permanent` / `Refused`) to their wire protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from otelml import semconv
from otelml.gateway.state.selfmetrics import ReceiverStats


@dataclass(frozen=True)
class ExportResult:
    """What a receiver reports back: OTLP `partial_success` when `rejected` > 0."""

    accepted: int
    rejected: int = 0
    message: str = ""


class GroundTruthItem(BaseModel):
    """One element of the POST /v1/ground_truth body."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(min_length=1)
    value: float | int | bool | str
    output: str = semconv.DEFAULT_OUTPUT
    model: str | None = None
    model_version: str | None = None


class Consumer(Protocol):
    """Each method raises `Permanent` (drop, 4xx) or `Refused` (retry later, 503/UNAVAILABLE)."""

    #: Where receivers count what they refuse before a request reaches the consumer.
    stats: ReceiverStats

    def consume_traces(self, payload: bytes, transport: str) -> ExportResult: ...

    def consume_logs(self, payload: bytes, transport: str) -> ExportResult: ...

    def consume_metrics(self, payload: bytes, transport: str) -> ExportResult: ...

    def consume_ground_truth(self, items: list[GroundTruthItem]) -> ExportResult: ...
