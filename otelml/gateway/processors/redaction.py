"""Redaction: personal data never reaches a destination, a metric, an exemplar or the UI.

Applied to the request bytes before anything else reads them (features, span metrics,
queues), so every consumer sees the same redacted data. Every string a request carries that
leaves the gateway or becomes a label is inspected (attribute keys and values, span and event
names, scope name/version, trace_state, status messages, log bodies, severity_text and
event_name, metric descriptions and data point attributes); ids, metric names and units are
not (they are not free text):
- an allowlist of attribute keys (glob patterns), fail closed: when set, every other attribute
  — on resources, spans, span events, links and log records — is removed;
- value patterns (e-mail addresses, payment card numbers that pass the Luhn check, bearer
  tokens, JWTs, AWS access keys, plus any configured regex) in string attributes, arrays of
  strings and log bodies are masked (`[REDACTED:<pattern>]`) or hashed
  (`[HASHED:<pattern>:<sha256 prefix>]`, stable, so equal values stay joinable).
Counts: `otelml_redaction_removed_attributes_total`, `otelml_redaction_values_total{pattern}`.
Costs a protobuf parse and a walk over every attribute: only when enabled.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelml.errors import Permanent
from otelml.gateway.state.families import Family, Sample

BUILTIN_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "card": r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)",
    "bearer": r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]+=*",
    "jwt": r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
    "aws_key": r"\bAKIA[0-9A-Z]{16}\b",
}


def luhn_valid(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return len(digits) >= 13 and total % 10 == 0


class Redactor:
    def __init__(
        self,
        allow_keys: Iterable[str] | None = None,
        patterns: dict[str, str] | None = None,
        action: Literal["mask", "hash"] = "mask",
    ) -> None:
        self.allow = [re.compile(fnmatch.translate(k)) for k in allow_keys] if allow_keys else None
        self.patterns = {
            name: re.compile(regex)
            for name, regex in {**BUILTIN_PATTERNS, **(patterns or {})}.items()
        }
        self.action = action
        self.removed = 0
        self.values: Counter[str] = Counter()

    def merge(self, other: Redactor) -> None:
        """Another worker's counters, and its patterns: a merged view built with only the
        built-in ones would leave the configured patterns' counters out of /metrics."""
        for name, pattern in other.patterns.items():
            self.patterns.setdefault(name, pattern)
        self.removed += other.removed
        self.values.update(other.values)

    def collect(self) -> Iterator[Family]:
        yield Family(
            "otelml_redaction_removed_attributes_total",
            "counter",
            "Attributes removed because their key is not allowed.",
            [Sample((), self.removed)],
        )
        yield Family(
            "otelml_redaction_values_total",
            "counter",
            "Values masked or hashed, by pattern.",
            [Sample((("pattern", p),), self.values[p]) for p in sorted(self.patterns)],
        )

    def _allowed(self, key: str) -> bool:
        return self.allow is None or any(p.match(key) for p in self.allow)

    def text(self, value: str) -> str:
        for name, pattern in self.patterns.items():

            def replace(match: re.Match[str], name: str = name) -> str:
                found = match.group(0)
                if name == "card" and not luhn_valid(found):
                    return found
                self.values[name] += 1
                if self.action == "hash":
                    digest = hashlib.sha256(found.encode()).hexdigest()[:16]
                    return f"[HASHED:{name}:{digest}]"
                return f"[REDACTED:{name}]"

            value = pattern.sub(replace, value)
        return value

    def _any_value(self, value: Any) -> None:
        which = value.WhichOneof("value")
        if which == "string_value":
            self._field(value, "string_value")
        elif which == "array_value":
            for item in value.array_value.values:
                self._any_value(item)
        elif which == "kvlist_value":
            self._attributes(value.kvlist_value.values)

    def _attributes(self, attributes: Any) -> None:
        keep = [a for a in attributes if self._allowed(a.key)]
        if len(keep) != len(attributes):
            self.removed += len(attributes) - len(keep)
            kept = [type(a)() for a in keep]
            for new, old in zip(kept, keep, strict=True):
                new.CopyFrom(old)
            del attributes[:]
            attributes.extend(kept)
        for attribute in attributes:
            # Keys too: an attribute key becomes a `feature` label and is forwarded.
            self._field(attribute, "key")
            self._any_value(attribute.value)

    def _field(self, message: Any, name: str) -> None:
        """Redact one string field, written back only if it changed: an untouched message
        serialises to the same bytes (no empty submessage made present)."""
        value = getattr(message, name)
        if value:
            redacted = self.text(value)
            if redacted != value:
                setattr(message, name, redacted)

    def _scope(self, scope: Any) -> None:
        self._field(scope, "name")
        self._field(scope, "version")
        self._attributes(scope.attributes)

    def traces(self, payload: bytes) -> bytes:
        """Every string of the request: resource and scope (attributes, name, version), span
        names (a `span_name` label), attributes, trace_state, status messages, events (name,
        attributes) and links (trace_state, attributes)."""
        request = ExportTraceServiceRequest()
        _parse(request, payload)
        for resource_spans in request.resource_spans:
            self._attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                if scope.HasField("scope"):
                    self._scope(scope.scope)
                for span in scope.spans:
                    self._field(span, "name")
                    self._field(span, "trace_state")
                    self._attributes(span.attributes)
                    for event in span.events:
                        self._field(event, "name")
                        self._attributes(event.attributes)
                    for link in span.links:
                        self._field(link, "trace_state")
                        self._attributes(link.attributes)
                    self._field(span.status, "message")
        return request.SerializeToString()

    def logs(self, payload: bytes) -> bytes:
        """Resource and scope, and per record: attributes, body, severity_text, event_name."""
        request = ExportLogsServiceRequest()
        _parse(request, payload)
        for resource_logs in request.resource_logs:
            self._attributes(resource_logs.resource.attributes)
            for scope in resource_logs.scope_logs:
                if scope.HasField("scope"):
                    self._scope(scope.scope)
                for record in scope.log_records:
                    self._attributes(record.attributes)
                    self._any_value(record.body)
                    self._field(record, "severity_text")
                    self._field(record, "event_name")
        return request.SerializeToString()

    def metrics(self, payload: bytes) -> bytes:
        """Resource and scope, metric descriptions, and the attributes of every data point and
        exemplar (the labels remote write sends). Metric names and units are left as they are:
        they must stay valid Prometheus names."""
        request = ExportMetricsServiceRequest()
        _parse(request, payload)
        for resource_metrics in request.resource_metrics:
            self._attributes(resource_metrics.resource.attributes)
            for scope in resource_metrics.scope_metrics:
                if scope.HasField("scope"):
                    self._scope(scope.scope)
                for metric in scope.metrics:
                    self._field(metric, "description")
                    which = metric.WhichOneof("data")
                    if which is None:
                        continue
                    for point in getattr(metric, which).data_points:
                        self._attributes(point.attributes)
                        for exemplar in getattr(point, "exemplars", ()):
                            self._attributes(exemplar.filtered_attributes)
        return request.SerializeToString()


def _parse(message: Any, payload: bytes) -> None:
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise Permanent(f"malformed protobuf: {exc}", reason="malformed") from None
