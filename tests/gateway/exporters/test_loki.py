"""Loki's limits: long lines truncated, large requests split under the limit, nothing lost."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otelml.gateway.exporters.loki import TRUNCATED, prepare
from tests.gateway.otlp_builders import logs


def _with_bodies(bodies: list[str]) -> bytes:
    request = ExportLogsServiceRequest.FromString(logs([{"k": "v"}] * len(bodies)))
    request.resource_logs[0].resource.attributes.add(key="service.name").value.string_value = "s"
    for record, body in zip(
        request.resource_logs[0].scope_logs[0].log_records, bodies, strict=True
    ):
        record.body.string_value = body
    return request.SerializeToString()


def test_small_requests_go_out_unchanged() -> None:
    payload = _with_bodies(["short", "lines"])
    assert prepare(payload, 1000, 10_000) == ([payload], 0)


def test_long_lines_are_truncated_with_a_marker() -> None:
    chunks, truncated = prepare(_with_bodies(["x" * 5000, "ok"]), 1000, 1 << 20)
    assert truncated == 1 and len(chunks) == 1
    records = ExportLogsServiceRequest.FromString(chunks[0]).resource_logs[0].scope_logs[0]
    first = records.log_records[0].body.string_value
    assert len(first.encode()) <= 1000 and first.endswith(TRUNCATED)
    assert records.log_records[1].body.string_value == "ok"


def test_large_requests_are_split_under_the_limit_keeping_every_record() -> None:
    bodies = [f"line {i} " + "y" * 900 for i in range(200)]  # ~190 kB
    chunks, _ = prepare(_with_bodies(bodies), 10_000, 50_000)
    assert len(chunks) >= 4 and all(len(c) <= 50_000 for c in chunks)
    received = []
    for chunk in chunks:
        request = ExportLogsServiceRequest.FromString(chunk)
        resource = request.resource_logs[0]
        assert resource.resource.attributes[0].value.string_value == "s"  # resource kept
        received += [r.body.string_value for r in resource.scope_logs[0].log_records]
        assert all(r.trace_id for r in resource.scope_logs[0].log_records)  # ids kept
    assert received == bodies
