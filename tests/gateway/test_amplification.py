"""Bounded work per request: a request is refused before it costs more than
`limits.max_request_values` (batch rows expanded), and one at the limit never stalls the loop.

The attack: one span whose 1,000,000-element array feature sits beside 60 scalar features —
61 million observations from an 11 MB request. The gateway runs as its own process, so its
peak resident set (VmHWM) is its own; /healthz is polled all along.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelml import semconv
from tests.gateway_process import GatewayProcess

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#: Peak resident growth allowed for either request (it was +3,058 MiB for the attack).
MAX_GROWTH_MIB = 250


def _batch(rows: int, scalars: int) -> bytes:
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="batch", end_time_unix_nano=10**18
        )
    )
    span.attributes.add(key=semconv.MODEL_NAME).value.string_value = "m"
    array = span.attributes.add(key=semconv.FEATURE_PREFIX + "big").value.array_value
    for i in range(rows):
        array.values.add().double_value = i * 0.5
    for j in range(scalars):
        span.attributes.add(key=f"{semconv.FEATURE_PREFIX}s{j}").value.double_value = float(j)
    return request.SerializeToString()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


class HealthProbe:
    """Polls /healthz every 50 ms; records the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.slowest = 0.0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    client.get(f"{self.url}/healthz").raise_for_status()
                except httpx.HTTPError:
                    self.failures += 1
                self.slowest = max(self.slowest, time.monotonic() - started)
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _refused(admin_url: str, reason: str) -> float:
    for line in httpx.get(f"{admin_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("otelml_receiver_requests_refused_total{") and f'"{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_amplifying_request_is_refused_and_one_at_the_limit_is_bounded(
    tmp_path: Path,
) -> None:
    attack = _batch(1_000_000, 60)
    at_limit = _batch(333_000, 2)  # 999,000 observations: just under the default limit
    gateway = GatewayProcess.configure(tmp_path)
    process = gateway.start()
    probe = HealthProbe(gateway.admin_url)
    try:
        time.sleep(0.5)
        before = _peak_rss_mib(process.pid)
        with grpc.insecure_channel(
            gateway.grpc_endpoint, options=[("grpc.max_send_message_length", 32 << 20)]
        ) as channel:
            export = channel.unary_unary(EXPORT)
            started = time.monotonic()
            try:
                export(attack, timeout=30)
                raise AssertionError("the amplifying request must be refused")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "limits.max_request_values (1000000)" in str(error.details())
            refused_in = time.monotonic() - started
            after_attack = _peak_rss_mib(process.pid)
            export(at_limit, timeout=30)  # accepted
        after_limit = _peak_rss_mib(process.pid)
        time.sleep(0.3)
    finally:
        probe.stop()
        gateway.kill()
    assert refused_in < 5.0
    assert after_attack - before < MAX_GROWTH_MIB, (before, after_attack)
    assert after_limit - before < MAX_GROWTH_MIB, (before, after_limit)
    assert probe.failures == 0
    assert probe.slowest < 1.0, probe.slowest


def test_the_refusal_is_counted(tmp_path: Path) -> None:
    gateway = GatewayProcess.configure(tmp_path, "limits: {max_request_values: 1000}\n")
    gateway.start()
    try:
        with grpc.insecure_channel(gateway.grpc_endpoint) as channel:
            export = channel.unary_unary(EXPORT)
            export(_batch(499, 1), timeout=10)  # 998 observations and the model name: accepted
            for request in (_batch(501, 1), _batch(10, 100), _batch(2000, 0)):
                try:
                    export(request, timeout=10)
                    raise AssertionError("past the limit")
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _refused(gateway.admin_url, "too_many_values") == 3
    finally:
        gateway.kill()
