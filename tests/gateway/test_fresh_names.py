"""Memory stays bounded under any stream of names: model, feature and span names refused by
the series budget are not remembered one by one.

The gateway runs as its own process (its resident set is its own); every span carries a
fresh model name, a fresh feature name and a fresh span name.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelml import semconv
from tests.gateway_process import GatewayProcess
from tests.prometheus_server import free_port

SPANS_PER_REQUEST = 1000
#: Resident growth allowed while 300,000 more fresh names of each kind arrive (it grew by
#: ~340-490 bytes per name: 100-140 MiB here).
MAX_GROWTH_MIB = 12


def _fresh(first: int) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(first, first + SPANS_PER_REQUEST):
        span = scope.spans.add(
            trace_id=i.to_bytes(16, "big"),
            span_id=i.to_bytes(8, "big"),
            name=f"span-{i}",
            end_time_unix_nano=10**18,
        )
        span.attributes.add(key=semconv.MODEL_NAME).value.string_value = f"model-{i}"
        span.attributes.add(key=f"{semconv.FEATURE_PREFIX}f{i}").value.double_value = 1.0
    return request.SerializeToString()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _send(client: httpx.Client, url: str, first: int, requests: int) -> None:
    for n in range(requests):
        response = client.post(
            url,
            content=_fresh(first + n * SPANS_PER_REQUEST),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200


def test_rss_stays_flat_under_a_stream_of_fresh_names(tmp_path: Path) -> None:
    http_port = free_port()
    gateway = GatewayProcess.configure(tmp_path, "limits: {max_series: 300}\n")
    config = gateway.config.read_text()
    gateway.config.write_text(config.replace("'127.0.0.1:0'", f"'127.0.0.1:{http_port}'"))
    url = f"http://127.0.0.1:{http_port}/v1/traces"
    process = gateway.start()
    try:
        with httpx.Client(timeout=30) as client:
            _send(client, url, 1, 100)  # warm-up: the budget fills, allocators settle
            time.sleep(0.5)
            before = _rss_mib(process.pid)
            _send(client, url, 1 + 100 * SPANS_PER_REQUEST, 300)
            time.sleep(0.5)
            after = _rss_mib(process.pid)
            exposition = client.get(f"{gateway.admin_url}/metrics").text
    finally:
        gateway.kill()
    assert after - before < MAX_GROWTH_MIB, (before, after)
    overflow = {
        line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(f"{semconv.SERIES_OVERFLOW}_total{{")
    }
    # Every one of the 400,000 spans past the budget is counted, none silently dropped.
    assert sum(overflow.values()) >= 2 * 400_000 - 300, overflow
