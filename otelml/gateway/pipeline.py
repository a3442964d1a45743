"""The processing pipeline behind every receiver: decode once, then fan out to the connectors.

Receivers hand raw OTLP protobuf bytes here and map the outcome to their wire protocol; they
know nothing of features or exporters. A span without a valid trace or span id is rejected
(OTLP partial success) — it could never be linked to — and counted; everything else is
accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from otelml.gateway.decode import decode_logs, decode_traces
from otelml.gateway.features import FeaturesConnector
from otelml.gateway.selfmetrics import ReceiverStats
from otelml.gateway.spanmetrics import SpanMetrics

REASON_INVALID_ID = "invalid_id"


@dataclass(frozen=True)
class ExportResult:
    """What a receiver reports back: OTLP `partial_success` when `rejected` > 0."""

    accepted: int
    rejected: int = 0
    message: str = ""


class Pipeline:
    def __init__(
        self, features: FeaturesConnector, spanmetrics: SpanMetrics, stats: ReceiverStats
    ) -> None:
        self.features = features
        self.spanmetrics = spanmetrics
        self.stats = stats

    def consume_traces(self, payload: bytes, transport: str) -> ExportResult:
        """Raises `Permanent` for a body that is not an ExportTraceServiceRequest."""
        records = decode_traces(payload)
        valid: npt.NDArray[np.bool_] = np.asarray(
            records.trace_id.any(axis=1) & records.span_id.any(axis=1), dtype=bool
        )
        rejected = records.count - int(np.count_nonzero(valid))
        self.features.consume(records, None if rejected == 0 else valid)
        self.spanmetrics.consume(records, None if rejected == 0 else valid)
        self.stats.accept("spans", transport, records.count - rejected)
        self.stats.refuse("spans", transport, REASON_INVALID_ID, rejected)
        if rejected:
            return ExportResult(
                records.count - rejected,
                rejected,
                f"{rejected} span(s) rejected: trace_id must be 16 bytes and span_id 8 bytes, "
                "not all zero",
            )
        return ExportResult(records.count)

    def consume_logs(self, payload: bytes, transport: str) -> ExportResult:
        """Raises `Permanent` for a body that is not an ExportLogsServiceRequest."""
        records = decode_logs(payload)
        self.features.consume(records)
        self.stats.accept("log_records", transport, records.count)
        return ExportResult(records.count)
