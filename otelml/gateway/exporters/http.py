"""One keep-alive HTTP/1.1 connection for the exporters: request bodies sent without copies.

Why not httpx: forwarding is the gateway's hottest path after decoding. A queued batch is a
list of request payloads (each already in memory); here they leave in one `sendmsg` with the
request head, straight from those buffers — no joined copy, no worker thread, no per-request
client machinery. Against httpx (a joined body, its connection pool and header models) this
halves the forwarding cost per request (bench/forwarding.py). Responses, small for OTLP and
remote write, are parsed by h11.

Only what the exporters need: POST, `http://` and `https://` (TLS 1.2+; the system's CAs or a
given CA file), one request at a time, reconnect on demand. A request that finds a reused
connection closed by the server before any answer is sent again once on a fresh one (servers
close idle keep-alive connections; that is not the destination failing).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import h11

from otelml.config import is_http_url
from otelml.gateway.exporters.sender import Outcome

#: Response bodies longer than this are read and dropped past it (errors, partial successes).
_MAX_BODY = 1 << 20


class HttpError(Exception):
    """The exchange failed before a whole response arrived; `reason` names how."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpConnection:
    """POSTs to one URL over one connection, opened when first needed."""

    def __init__(
        self, url: str, headers: dict[str, str], timeout: float, ca_file: Path | None = None
    ) -> None:
        if not is_http_url(url):
            raise ValueError(f"not an http(s) URL: {url!r}")
        parts = urlsplit(url)
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._tls = ssl.create_default_context(cafile=ca_file)
            self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._headers = [
            ("Host", parts.netloc.rsplit("@", 1)[-1]),
            ("User-Agent", "otelml-gateway"),
            *headers.items(),
        ]
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._h11: h11.Connection | None = None

    async def post(self, parts: list[bytes]) -> Response:
        """The response to a POST of `parts` concatenated; `HttpError` when none came."""
        deadline = time.monotonic() + self._timeout
        reused = self._sock is not None
        try:
            return await self._exchange(parts, deadline)
        except HttpError as error:
            self.close()
            if not (reused and error.reason == "closed"):
                raise
        return await self._exchange(parts, deadline)  # the server had closed it while idle

    async def _exchange(self, parts: list[bytes], deadline: float) -> Response:
        if self._sock is None:
            await self._connect(deadline)
        assert self._sock is not None and self._h11 is not None
        size = sum(len(part) for part in parts)
        head = self._h11.send(
            h11.Request(
                method="POST",
                target=self._target,
                headers=[*self._headers, ("Content-Length", str(size))],
            )
        )
        assert head is not None
        for part in parts:  # checks the framing; the data itself passes through uncopied
            self._h11.send_with_data_passthrough(h11.Data(data=part))
        self._h11.send(h11.EndOfMessage())
        await self._send([head, *parts], deadline)
        return await self._receive(deadline)

    async def _connect(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM),
                _left(deadline),
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise HttpError("resolve", f"cannot resolve {self._host}: {exc}") from None
        error: Exception | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, address), _left(deadline))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._tls is not None:
                    sock = await self._handshake(sock, deadline)
            except (OSError, asyncio.TimeoutError, HttpError) as exc:
                sock.close()
                error = exc
                continue
            self._sock, self._h11 = sock, h11.Connection(h11.CLIENT)
            return
        if isinstance(error, HttpError):
            raise error
        reason = "timeout" if isinstance(error, asyncio.TimeoutError) else "connect"
        raise HttpError(reason, f"cannot connect to {self.url}: {error}")

    async def _handshake(self, sock: socket.socket, deadline: float) -> ssl.SSLSocket:
        assert self._tls is not None
        tls = self._tls.wrap_socket(sock, server_hostname=self._host, do_handshake_on_connect=False)
        try:
            while True:
                try:
                    tls.do_handshake()
                    return tls
                except ssl.SSLWantReadError:
                    await _ready(tls, False, deadline)
                except ssl.SSLWantWriteError:
                    await _ready(tls, True, deadline)
        except ssl.SSLError as exc:
            tls.close()
            raise HttpError("tls", f"TLS handshake with {self.url} failed: {exc}") from None
        except BaseException:
            tls.close()
            raise

    async def _send(self, buffers: list[bytes], deadline: float) -> None:
        assert self._sock is not None
        sock = self._sock
        views = [memoryview(buffer) for buffer in buffers if buffer]
        while views:
            try:
                if isinstance(sock, ssl.SSLSocket):  # no sendmsg on TLS: one buffer at a time
                    written = sock.send(views[0])
                else:
                    written = sock.sendmsg(views)
            except (BlockingIOError, ssl.SSLWantWriteError):
                await _ready(sock, True, deadline)
                continue
            except ssl.SSLWantReadError:
                await _ready(sock, False, deadline)
                continue
            except OSError as exc:
                raise HttpError("closed", f"connection to {self.url} lost: {exc}") from None
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if views:
                views[0] = views[0][written:]

    async def _receive(self, deadline: float) -> Response:
        assert self._sock is not None and self._h11 is not None
        connection = self._h11
        response: h11.Response | None = None
        body = bytearray()
        answered = False
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError("protocol", f"bad response from {self.url}: {exc}") from None
            if event is h11.NEED_DATA:
                data = await self._recv(deadline)
                if data:
                    answered = True
                elif not answered:
                    raise HttpError("closed", f"{self.url} closed the connection unanswered")
                connection.receive_data(data)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                if len(body) < _MAX_BODY:
                    body += event.data[: _MAX_BODY - len(body)]
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise HttpError("protocol", f"{self.url} closed the connection mid-response")
        assert response is not None
        if connection.our_state is h11.DONE and connection.their_state is h11.DONE:
            connection.start_next_cycle()
        else:  # the server asked to close (or HTTP/1.0)
            self.close()
        headers = {name.decode(): value.decode("latin-1") for name, value in response.headers}
        return Response(response.status_code, headers, bytes(body))

    async def _recv(self, deadline: float) -> bytes:
        assert self._sock is not None
        sock = self._sock
        while True:
            try:
                return sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                await _ready(sock, False, deadline)
            except ssl.SSLWantWriteError:
                await _ready(sock, True, deadline)
            except OSError as exc:
                raise HttpError("closed", f"connection to {self.url} lost: {exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock, self._h11 = None, None


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


async def _ready(sock: socket.socket, writable: bool, deadline: float) -> None:
    """Until `sock` can be written (or read); `HttpError("timeout")` past the deadline."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    add, remove = (
        (loop.add_writer, loop.remove_writer) if writable else (loop.add_reader, loop.remove_reader)
    )
    add(fd, _wake, waiter)
    timer = loop.call_later(_left(deadline), _wake, waiter)
    try:
        await waiter
    finally:
        remove(fd)
        timer.cancel()
    if time.monotonic() >= deadline:
        raise HttpError("timeout", "no answer in time")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
