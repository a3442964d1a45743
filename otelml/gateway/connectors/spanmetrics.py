"""RED metrics for every span, named as the OpenTelemetry spanmetrics connector names them.

`traces_spanmetrics_calls_total` and `traces_spanmetrics_latency` (seconds) by service,
span_name, span_kind and status_code, so Grafana's Tempo service views work on them; each
latency bucket keeps an exemplar that opens a span of that latency.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.connectors.connector import RecordSignal
from otelml.gateway.decode import Records
from otelml.gateway.state.observations import Origin
from otelml.gateway.state.spans import SpanKey, SpanMetrics

_BUCKETS = np.asarray(semconv.SPANMETRICS_BUCKETS)


class SpanMetricsConnector:
    """Spans → the span metrics table (log records carry no duration)."""

    signals: frozenset[RecordSignal] = frozenset({"spans"})

    def __init__(self, table: SpanMetrics) -> None:
        self.table = table

    def consume(self, records: Records, valid: npt.NDArray[np.bool_] | None = None) -> None:
        """Count the spans of one request (`valid` masks out spans rejected by the receiver)."""
        if records.count == 0:
            return
        index = np.arange(records.count) if valid is None else np.flatnonzero(valid)
        if len(index) == 0:
            return
        kind = np.clip(records.kind[index], 0, len(semconv.SPAN_KINDS) - 1).astype(np.int64)
        status = np.clip(records.status[index], 0, len(semconv.STATUS_CODES) - 1).astype(np.int64)
        service = records.service[index].astype(np.int64)
        name = records.name[index].astype(np.int64)
        combined = ((service * len(records.names) + name) * 6 + kind) * 3 + status
        duration = records.duration_s[index]
        bucket = np.searchsorted(_BUCKETS, duration, side="left")
        origin = Origin(records.trace_id, records.span_id, records.time_s)
        if combined.min() == combined.max():  # the usual batch: one service, name, kind, status
            codes, members_of = [int(combined[0])], [np.arange(len(index))]
        else:
            groups, inverse = np.unique(combined, return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(len(groups) + 1)).tolist()
            codes = groups.tolist()
            members_of = [order[bounds[g] : bounds[g + 1]] for g in range(len(codes))]
        for code, members in zip(codes, members_of, strict=True):
            rest, status_code = divmod(code, 3)
            rest, kind_code = divmod(rest, 6)
            service_code, name_code = divmod(rest, len(records.names))
            key = SpanKey(
                records.services[service_code],
                records.names[name_code],
                semconv.SPAN_KINDS[kind_code],
                semconv.STATUS_CODES[status_code],
            )
            series = self.table.series_for(key)
            if series is None:
                self.table.budget.count_overflow(semconv.SPANMETRICS_CALLS, len(members))
                continue
            series.counts += np.bincount(bucket[members], minlength=len(series.counts))
            series.sum += float(duration[members].sum())
            filled = int(np.count_nonzero(series.counts))
            fills_empty, series.filled = filled > series.filled, filled
            series.exemplars.offer(
                bucket[members], duration[members], index[members], origin, fills_empty
            )
