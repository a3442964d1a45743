"""Forwarding: each destination's queue drained in order to an OTLP endpoint, with retries.

Requests go out as they came in (protobuf bytes; JSON requests as their protobuf form), so
trace and span ids, resource attributes and everything the gateway does not read reach Tempo or
Loki unchanged. Queued requests go out together: serialised OTLP requests concatenate into one
valid request (their repeated fields merge), so a batch is the list of their payloads — sent
as they are over HTTP, joined for gRPC (which takes one buffer).

Retries follow the OTLP specification: gRPC UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, CANCELLED,
OUT_OF_RANGE, DATA_LOSS and RESOURCE_EXHAUSTED-with-RetryInfo; HTTP 429, 502, 503, 504 and
connection errors — with exponential backoff and jitter, or the server's
Retry-After / RetryInfo when it gives one. Anything else (HTTP 400, gRPC INVALID_ARGUMENT, …)
is permanent: the request is dropped and counted by reason. One destination's outage never
slows another: each has its own queue and task.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otelml.gateway.exporters.http import HttpConnection, HttpError, Response
from otelml.gateway.exporters.queue import DiskQueue

Signal = Literal["spans", "log_records", "data_points"]

_SERVICES = {
    "spans": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "log_records": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_HTTP_PATHS = {"spans": "/v1/traces", "log_records": "/v1/logs"}
_RETRYABLE_GRPC = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.DATA_LOSS,
}
_RETRYABLE_HTTP = {429, 502, 503, 504}
#: Items a destination said it rejected in an OTLP partial success (counted as failed).
REJECTED = "rejected_by_destination"


@dataclass(frozen=True)
class Outcome:
    """What one send attempt came to."""

    ok: bool
    retryable: bool = False
    retry_after: float | None = None
    reason: str = ""
    #: Items of a delivered request that the destination cannot hold, by reason (counted).
    dropped: dict[str, int] = field(default_factory=dict)


class Transport(Protocol):
    async def send(self, parts: list[bytes]) -> Outcome:
        """Send one request: `parts` concatenated."""
        ...

    async def close(self) -> None: ...


class GrpcTransport:
    """OTLP/gRPC client. Calls are blocking grpcio calls run in a worker thread: grpcio's C core
    does the I/O without the GIL, so sending costs the event loop (the receivers) far less than
    an asyncio call of the same size."""

    def __init__(
        self,
        endpoint: str,
        signal: Signal,
        headers: dict[str, str],
        timeout: float,
        ca_file: Path | None = None,
    ):
        self._target = endpoint.split("://", 1)[-1].rstrip("/")
        self._method = _SERVICES[signal]
        self._signal = signal
        self._metadata = tuple((k.lower(), v) for k, v in headers.items())
        self._timeout = timeout
        options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
        if endpoint.startswith("https://") or ca_file is not None:
            roots = ca_file.read_bytes() if ca_file is not None else None
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
            self._channel = grpc.secure_channel(self._target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self._target, options=options)
        self._export = self._channel.unary_unary(
            self._method, request_serializer=None, response_deserializer=None
        )

    def _send(self, payload: bytes) -> Outcome:
        try:
            answer = self._export(payload, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            code = error.code()
            retry_after = _retry_info(error.trailing_metadata())
            reason = code.name.lower()
            if code in _RETRYABLE_GRPC or (
                code == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after is not None
            ):
                return Outcome(False, True, retry_after, reason)
            return Outcome(False, False, None, reason)
        return Outcome(True, dropped=_rejected(self._signal, answer))

    async def send(self, parts: list[bytes]) -> Outcome:
        return await asyncio.to_thread(self._send, joined(parts))

    async def close(self) -> None:
        self._channel.close()


def _retry_info(metadata: object) -> float | None:
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


class HttpTransport:
    """OTLP/HTTP client (protobuf): the batch's payloads leave as they are, in one write."""

    def __init__(
        self,
        endpoint: str,
        signal: Signal,
        headers: dict[str, str],
        timeout: float,
        ca_file: Path | None = None,
    ):
        base = endpoint.rstrip("/")
        path = _HTTP_PATHS[signal]
        self.url = base if base.endswith(path) else base + path
        self._signal = signal
        self._connection = HttpConnection(
            self.url, {**headers, "Content-Type": "application/x-protobuf"}, timeout, ca_file
        )

    async def send(self, parts: list[bytes]) -> Outcome:
        try:
            response = await self._connection.post(parts)
        except HttpError as error:
            return Outcome(False, True, None, error.reason)
        if response.status < 300:
            if response.headers.get("content-type", "").startswith("application/x-protobuf"):
                return Outcome(True, dropped=_rejected(self._signal, response.body))
            return Outcome(True)
        return http_failure(response, response.status in _RETRYABLE_HTTP)

    async def close(self) -> None:
        self._connection.close()


def _rejected(signal: Signal, answer: bytes | None) -> dict[str, int]:
    """Items the destination's OTLP partial success says it rejected."""
    if not answer:
        return {}
    try:
        if signal == "spans":
            count = ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans
        else:
            logs = ExportLogsServiceResponse.FromString(answer)
            count = logs.partial_success.rejected_log_records
    except DecodeError:
        return {}
    return {REJECTED: int(count)} if count > 0 else {}


def joined(parts: list[bytes]) -> bytes:
    """A batch as one buffer, for what takes only one (grpcio, a protobuf parse)."""
    return parts[0] if len(parts) == 1 else b"".join(parts)


def http_failure(response: Response, retryable: bool) -> Outcome:
    """The outcome of an HTTP answer of 300 or more: retried after the server's Retry-After
    (else the backoff) when `retryable`, else dropped; counted as `http_<status>`."""
    reason = f"http_{response.status}"
    if retryable:
        return Outcome(False, True, _retry_after(response.headers.get("retry-after")), reason)
    return Outcome(False, False, None, reason)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: use the backoff


@dataclass(frozen=True)
class RetryPolicy:
    initial_interval: float = 0.5
    max_interval: float = 30.0
    #: 0 = retry forever (the queue is durable); else drop and count after this long.
    max_elapsed: float = 0.0


@dataclass
class ExporterStats:
    """Counters of one exporter (by signal): what conservation is checked against."""

    signal: str = ""
    sent: Counter[Signal] = field(default_factory=Counter)
    failed: Counter[tuple[Signal, str]] = field(default_factory=Counter)
    enqueue_failed: Counter[Signal] = field(default_factory=Counter)
    retries: int = 0
    queue_bytes: int = 0
    queue_items: int = 0
    queue_capacity: int = 0

    def merge(self, other: ExporterStats) -> None:
        self.signal = self.signal or other.signal
        self.sent.update(other.sent)
        self.failed.update(other.failed)
        self.enqueue_failed.update(other.enqueue_failed)
        self.retries += other.retries
        self.queue_bytes += other.queue_bytes
        self.queue_items += other.queue_items
        self.queue_capacity += other.queue_capacity


class Sender:
    """Drains one queue to one destination, in order, forever (until stopped).

    Sends are coalesced: after a send starts, the next one waits until `linger` has passed
    unless a full batch (`batch_bytes`) is queued by then. A lone request after a quiet spell
    goes out at once; under load, fewer, larger calls carry the same bytes — each call costs
    ~0.2 ms of the gateway's core whatever its size, a third of a 382 kB request's own cost.
    """

    def __init__(
        self,
        name: str,
        signal: Signal,
        queue: DiskQueue,
        transport: Transport,
        retry: RetryPolicy,
    ) -> None:
        self.name = name
        self.signal = signal
        self.queue = queue
        self.transport = transport
        self.retry = retry
        self.stats = ExporterStats(signal=signal, queue_capacity=queue.max_bytes)
        #: Payload bytes sent in one call at most: below the 4 MiB that gRPC servers (the
        #: collector's and Tempo's OTLP receivers among them) accept by default.
        self.batch_bytes = 3 * 1024 * 1024
        #: Seconds between the starts of two sends, unless a full batch waits.
        self.linger = 0.05
        self._wakeup = asyncio.Event()
        #: Lingering: an enqueue wakes the sender only once a batch is full.
        self._holding = False
        self._task: asyncio.Task[None] | None = None
        self._sync_task: asyncio.Task[None] | None = None

    def enqueue(self, payload: bytes, items: int) -> None:
        """Raises `Refused` when the queue is full (counted)."""
        try:
            self.queue.append(payload, items)
        except Exception:
            self.stats.enqueue_failed[self.signal] += items
            raise
        if not self._holding or self.queue.pending_bytes > self.batch_bytes:
            self._wakeup.set()

    def snapshot(self) -> ExporterStats:
        self.stats.queue_bytes = self.queue.pending_bytes
        self.stats.queue_items = self.queue.pending_items
        return self.stats

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        self._sync_task = asyncio.create_task(self._sync())

    async def stop(self) -> None:
        for task in (self._task, self._sync_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.transport.close()
        self.queue.close()

    async def _sync(self) -> None:
        while True:
            await asyncio.sleep(1.0 if self.queue.fsync == "interval" else 0.2)
            await self.queue.sync_in_thread()

    async def _wait(self, timeout: float | None) -> None:
        """Until the next enqueue, or `timeout` seconds."""
        self._wakeup.clear()
        if timeout is None:
            await self._wakeup.wait()
            return
        timer = asyncio.get_running_loop().call_later(timeout, self._wakeup.set)
        try:
            await self._wakeup.wait()
        finally:
            timer.cancel()

    async def _run(self) -> None:
        started = -self.linger
        while True:
            records = self.queue.peek_many(self.batch_bytes)
            if not records:
                await self._wait(None)
                continue
            hold = started + self.linger - time.monotonic()
            batch = sum(r.size for r in records)
            if hold > 0 and self.queue.pending_bytes <= batch:  # not full: nothing left behind
                self._holding = True
                try:
                    await self._wait(hold)
                finally:
                    self._holding = False
                continue
            started = time.monotonic()
            await self._deliver([r.payload for r in records], sum(r.items for r in records))
            self.queue.ack_many(records)

    async def _deliver(self, parts: list[bytes], items: int) -> None:
        """Send until delivered, dropped as permanent, or past max_elapsed; count the outcome."""
        first = time.monotonic()
        delay = self.retry.initial_interval
        while True:
            outcome = await self.transport.send(parts)
            if outcome.ok:
                for reason, count in outcome.dropped.items():
                    self.stats.failed[(self.signal, reason)] += count
                    items -= count
                self.stats.sent[self.signal] += items
                return
            if not outcome.retryable:
                self.stats.failed[(self.signal, outcome.reason)] += items
                return
            elapsed = time.monotonic() - first
            if self.retry.max_elapsed and elapsed >= self.retry.max_elapsed:
                self.stats.failed[(self.signal, "max_elapsed")] += items
                return
            self.stats.retries += 1
            wait = outcome.retry_after if outcome.retry_after is not None else delay
            await asyncio.sleep(wait * (0.8 + 0.4 * random.random()))  # jitter ±20 %
            delay = min(delay * 2, self.retry.max_interval)
