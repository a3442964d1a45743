"""The processing pipeline behind every receiver: decode once, then fan out to the connectors.

Receivers hand raw OTLP protobuf bytes here (through the `Consumer` interface) and map the
outcome to their wire protocol; they know nothing of features or exporters. A span without a
valid trace or span id is rejected (OTLP partial success) — it could never be linked to — and
counted; everything else is accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from otelml.errors import Permanent, Refused
from otelml.gateway.connectors.connector import Connector, RecordSignal
from otelml.gateway.connectors.grouping import expanded_values
from otelml.gateway.consumer import ExportResult, GroundTruthItem
from otelml.gateway.decode import Records, decode_logs, decode_traces
from otelml.gateway.decode.bentoml_monitor import BentoMonitorReader
from otelml.gateway.decode.metrics import count_points
from otelml.gateway.decode.records import too_many_values, truncate_labels
from otelml.gateway.exporters.sender import Sender
from otelml.gateway.performance.tracker import GroundTruthTracker
from otelml.gateway.processors.redaction import Redactor
from otelml.gateway.state.keys import ModelKey
from otelml.gateway.state.selfmetrics import ReceiverStats

REASON_INVALID_ID = "invalid_id"
#: What one observation costs while a request is counted (columns, sort keys, an index):
#: charged to admission before the work starts.
WORK_BYTES_PER_VALUE = 48


class Pipeline:
    """Processors, then every connector that reads the signal, then the exporters' queues."""

    def __init__(
        self,
        connectors: Sequence[Connector],
        stats: ReceiverStats,
        senders: Sequence[Sender] = (),
        redactor: Redactor | None = None,
        ground_truth: GroundTruthTracker | None = None,
        context_keys: tuple[str, ...] = (),
    ) -> None:
        """`ground_truth`: where POST /v1/ground_truth goes (None: no model joins any);
        `context_keys`: the trace attributes decoded per record (drift attribution's keys)."""
        self.context_keys = context_keys
        self.connectors = list(connectors)
        self.stats = stats
        self.senders = list(senders)
        self.redactor = redactor
        self.ground_truth = ground_truth
        self.bentoml_monitor = BentoMonitorReader(stats.bentoml_monitor)
        #: `limits.max_request_values`: ml.* values a request may carry, batch rows expanded
        #: (0: no limit); past it the request is refused (413) before any work.
        self.max_values = 0
        #: Charges bytes of work to the current request's admission (raises `Refused`).
        self.charge: Callable[[int], None] = lambda size: None
        #: `limits.max_label_length`: longer strings are cut before they become labels.
        self.max_label_length = 256

    def _bounded(self, records: Records) -> int:
        """The observations `records` expand to; `Permanent` 413 past `max_values`."""
        values = expanded_values(records)
        if self.max_values and values > self.max_values:
            raise too_many_values(self.max_values, f"{values} values (batch rows expanded), more")
        return values

    def _admit_work(self, records: Records) -> None:
        """Bound the work before doing it: refuse a request that expands past `max_values`,
        charge the rest to admission; cut what would make too long a label."""
        self.charge(self._bounded(records) * WORK_BYTES_PER_VALUE)
        self.stats.truncated.update(truncate_labels(records, self.max_label_length))

    def _forward(self, signal: str, payload: bytes, items: int) -> None:
        """Persist the request in every destination's queue before it is acknowledged.

        Runs before any counting: a request refused here (a full queue: `Refused`, which the
        receivers answer with a retry hint) is retried by the client and must not be counted
        twice.
        """
        for sender in self.senders:
            if sender.signal == signal:
                sender.enqueue(payload, items)

    def _connect(
        self, signal: RecordSignal, records: Records, valid: npt.NDArray[np.bool_] | None = None
    ) -> None:
        for connector in self.connectors:
            if signal in connector.signals:
                connector.consume(records, valid)

    def consume_traces(self, payload: bytes, transport: str) -> ExportResult:
        """Raises `Permanent` for a body that is not an ExportTraceServiceRequest."""
        if self.redactor is not None:
            # Bounded before redaction's full protobuf parse, which costs far more per value.
            self._bounded(decode_traces(payload, max_values=self.max_values))
            payload = self.redactor.traces(payload)
        records = decode_traces(payload, context=self.context_keys, max_values=self.max_values)
        self._admit_work(records)
        valid: npt.NDArray[np.bool_] = np.asarray(
            records.trace_id.any(axis=1) & records.span_id.any(axis=1), dtype=bool
        )
        rejected = records.count - int(np.count_nonzero(valid))
        self._forward("spans", payload, records.count - rejected)
        self._connect("spans", records, None if rejected == 0 else valid)
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
        if self.redactor is not None:
            self._bounded(decode_logs(payload, max_values=self.max_values))
            payload = self.redactor.logs(payload)
        records = decode_logs(payload, context=self.context_keys, max_values=self.max_values)
        self._admit_work(records)
        self._forward("log_records", payload, records.count)
        self._connect("log_records", records)
        self._read_bentoml_monitor(payload)
        self.stats.accept("log_records", transport, records.count)
        return ExportResult(records.count)

    def _read_bentoml_monitor(self, payload: bytes) -> None:
        """bentoml.monitor records carry their columns in the body: read them as ml.* records
        (the original request is what was forwarded)."""
        rewritten = self.bentoml_monitor.rewrite(payload)
        if rewritten is not None:
            try:
                records = decode_logs(
                    rewritten, context=self.context_keys, max_values=self.max_values
                )
                self._admit_work(records)
            except (Permanent, Refused):
                # The request itself was accepted and forwarded already: count, never fail it.
                self.stats.bentoml_monitor["too_many_values"] += 1
                return
            self._connect("log_records", records)

    def consume_metrics(self, payload: bytes, transport: str) -> ExportResult:
        """App metrics: validated, then only forwarded (to Prometheus remote write)."""
        if not any(sender.signal == "data_points" for sender in self.senders):
            raise Permanent(
                "no metrics exporter configured (exporters.metrics.remote_write)",
                "no_exporter",
                404,
            )
        if self.redactor is not None:
            payload = self.redactor.metrics(payload)
        try:
            points = count_points(payload)
        except DecodeError as exc:
            raise Permanent(f"malformed protobuf: {exc}", "malformed") from None
        self._forward("data_points", payload, points)
        self.stats.accept("data_points", transport, points)
        return ExportResult(points)

    def consume_ground_truth(self, items: list[GroundTruthItem]) -> ExportResult:
        """Ground truth posted as JSON (POST /v1/ground_truth)."""
        if self.ground_truth is None:
            raise Permanent(
                "no model has ground_truth configured: nothing to join", "no_ground_truth", 404
            )
        now = time.time()
        tracker = self.ground_truth
        for item in items:
            model = ModelKey(item.model, item.model_version or "") if item.model else None
            tracker.add_truth(item.prediction_id, item.output, _json_value(item.value), now, model)
        return ExportResult(len(items))


def _json_value(value: float | int | bool | str) -> float | str:
    # The same spelling as OTLP values: bools "true"/"false", ints as labels, floats as numbers.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value
