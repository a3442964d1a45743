"""The gateway's own counters: what each receiver accepted and refused, and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from otelml import semconv
from otelml.gateway.state.families import Family, Sample
from otelml.semconv import Signal


class ReceiverStats:
    """Counters keyed by (signal, transport) and, for refusals, reason."""

    def __init__(self) -> None:
        self.accepted: Counter[tuple[Signal, str]] = Counter()
        self.refused: Counter[tuple[Signal, str, str]] = Counter()
        self.requests_refused: Counter[tuple[str, str]] = Counter()
        #: bentoml.monitor log records by outcome: "read" (as ml.* records) or "unread".
        self.bentoml_monitor: Counter[str] = Counter()
        #: Strings cut to `limits.max_label_length`, by field (span_name, service, key, value).
        self.truncated: Counter[str] = Counter()

    def accept(self, signal: Signal, transport: str, items: int) -> None:
        self.accepted[(signal, transport)] += items

    def refuse(self, signal: Signal, transport: str, reason: str, items: int) -> None:
        if items:
            self.refused[(signal, transport, reason)] += items

    def refuse_request(self, transport: str, reason: str) -> None:
        self.requests_refused[(transport, reason)] += 1

    def merge(self, other: ReceiverStats) -> None:
        self.accepted.update(other.accepted)
        self.refused.update(other.refused)
        self.requests_refused.update(other.requests_refused)
        self.truncated.update(getattr(other, "truncated", {}))
        self.bentoml_monitor.update(other.bentoml_monitor)

    def collect(self) -> Iterator[Family]:
        """Accepted and refused items per signal, whole requests refused, bentoml.monitor."""
        for signal, accepted, refused in _FAMILIES:
            yield Family(
                f"{accepted}_total",
                "counter",
                f"OTLP {signal.replace('_', ' ')} accepted by a receiver.",
                [Sample((("transport", t),), self.accepted[(signal, t)]) for t in _TRANSPORTS],
            )
            yield Family(
                f"{refused}_total",
                "counter",
                f"OTLP {signal.replace('_', ' ')} refused by a receiver, by reason.",
                [
                    Sample((("transport", k[1]), ("reason", k[2])), v)
                    for k, v in sorted(self.refused.items())
                    if k[0] == signal
                ],
            )
        yield Family(
            f"{semconv.RECEIVER_REQUESTS_REFUSED}_total",
            "counter",
            "Whole OTLP requests refused before decoding, by reason.",
            [
                Sample((("transport", t), ("reason", r)), v)
                for (t, r), v in sorted(self.requests_refused.items())
            ],
        )
        yield Family(
            f"{semconv.RECEIVER_TRUNCATED}_total",
            "counter",
            "Strings cut to limits.max_label_length before they became labels, by field.",
            [Sample((("field", f),), v) for f, v in sorted(self.truncated.items())],
        )
        yield Family(
            f"{semconv.BENTOML_MONITOR_RECORDS}_total",
            "counter",
            "bentoml.monitor log records read as ml.* records, or unread (no schema seen yet).",
            [Sample((("outcome", o),), v) for o, v in sorted(self.bentoml_monitor.items())],
        )


_TRANSPORTS = ("grpc", "http")
_FAMILIES: tuple[tuple[Signal, str, str], ...] = (
    ("spans", semconv.RECEIVER_ACCEPTED_SPANS, semconv.RECEIVER_REFUSED_SPANS),
    ("data_points", "otelml_receiver_accepted_data_points", "otelml_receiver_refused_data_points"),
    ("log_records", semconv.RECEIVER_ACCEPTED_LOG_RECORDS, semconv.RECEIVER_REFUSED_LOG_RECORDS),
)
