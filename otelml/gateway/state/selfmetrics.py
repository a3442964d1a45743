"""The gateway's own counters: what each receiver accepted and refused, and why."""

from __future__ import annotations

from collections import Counter

from otelml.semconv import Signal


class ReceiverStats:
    """Counters keyed by (signal, transport) and, for refusals, reason."""

    def __init__(self) -> None:
        self.accepted: Counter[tuple[Signal, str]] = Counter()
        self.refused: Counter[tuple[Signal, str, str]] = Counter()
        self.requests_refused: Counter[tuple[str, str]] = Counter()
        #: bentoml.monitor log records by outcome: "read" (as ml.* records) or "unread".
        self.bentoml_monitor: Counter[str] = Counter()

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
        self.bentoml_monitor.update(other.bentoml_monitor)
