"""Builds the forwarding senders from the config: one queue and one task per destination."""

from __future__ import annotations

from pydantic import SecretStr

from otelml.config import GatewayConfig, LogsExporter, OtlpExporter
from otelml.gateway.exporters.loki import LokiLimits
from otelml.gateway.exporters.otlp import GrpcTransport, HttpTransport
from otelml.gateway.exporters.queue import DiskQueue
from otelml.gateway.exporters.remote_write import RemoteWriteTransport
from otelml.gateway.exporters.sender import RetryPolicy, Sender, Transport
from otelml.semconv import Signal


def _transport(exporter: OtlpExporter, signal: Signal) -> Transport:
    kind = GrpcTransport if exporter.protocol == "grpc" else HttpTransport
    headers = revealed(exporter.headers)
    return kind(exporter.endpoint, signal, headers, exporter.timeout, exporter.ca_file)


def revealed(headers: dict[str, SecretStr]) -> dict[str, str]:
    """The header values to send (kept as secrets everywhere else)."""
    return {name: value.get_secret_value() for name, value in headers.items()}


def build_senders(config: GatewayConfig, worker: int | None = None) -> list[Sender]:
    """Senders for the configured destinations; each worker process gets its own queues."""
    root = config.queue.directory
    if worker is not None:
        root = root / f"worker-{worker}"
    senders = []
    for name, signal, exporter in (
        ("traces", "spans", config.exporters.traces),
        ("logs", "log_records", config.exporters.logs),
    ):
        if exporter is None:
            continue
        retry = exporter.retry
        transport = _transport(exporter, signal)  # type: ignore[arg-type]
        if isinstance(exporter, LogsExporter):
            transport = LokiLimits(transport, exporter.max_line_bytes, exporter.max_request_bytes)
        senders.append(
            Sender(
                name,
                signal,  # type: ignore[arg-type]
                DiskQueue(root / name, config.queue.max_bytes, config.queue.fsync),
                transport,
                RetryPolicy(retry.initial_interval, retry.max_interval, retry.max_elapsed or 0.0),
            )
        )
    metrics = config.exporters.metrics
    if metrics is not None:
        retry = metrics.retry
        senders.append(
            Sender(
                "metrics",
                "data_points",
                DiskQueue(root / "metrics", config.queue.max_bytes, config.queue.fsync),
                RemoteWriteTransport(
                    metrics.remote_write,
                    revealed(metrics.headers),
                    metrics.timeout,
                    metrics.ca_file,
                ),
                RetryPolicy(retry.initial_interval, retry.max_interval, retry.max_elapsed or 0.0),
            )
        )
    return senders
