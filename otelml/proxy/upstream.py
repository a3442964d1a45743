"""The proxy's HTTP/1.1 client to its one upstream: keep-alive connections, raw bytes.

Why not httpx: a proxy must hand on the body bytes exactly as they came (no decoding), keep
nothing between clients (httpx keeps cookies), and cost little per request — httpx/httpcore
spend more CPU per request than the model server the bench puts behind the proxy, and write
a request's head and body separately. Here a request is one `write` (head and body) on an
asyncio protocol, and responses are parsed by httptools (llhttp, as uvicorn does).

Errors, as the proxy answers them: `ConnectFailed` (502), `TimedOut` (504: no connection,
no response head or no next body chunk within the timeout), `ProtocolFailed` (502: the
upstream closed early or sent something that is not HTTP/1.1).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

_PAUSE_BYTES = 1 << 20  # stop reading from the upstream past this much unsent body
_NO_BODY_STATUS = frozenset({204, 304})
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})


class UpstreamError(Exception):
    reason = "protocol"


class ConnectFailed(UpstreamError):
    reason = "connect"


class TimedOut(UpstreamError):
    reason = "timeout"


class ProtocolFailed(UpstreamError):
    reason = "protocol"


class Response:
    """One response: `status`, raw `headers`, then `chunks()`; `close()` when done."""

    def __init__(self, connection: _Connection, head_only: bool) -> None:
        self._connection = connection
        self._head_only = head_only
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._headers_done = False
        self.complete = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._until_close = False
        self.keep_alive = False
        self._closed = False
        self._parser = httptools.HttpResponseParser(self)

    # --- httptools callbacks ----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational: wait for the real answer
            self.headers = []
            return
        self.status = status
        self._headers_done = True
        names = {name.lower() for name, _ in self.headers}
        if self._head_only or status in _NO_BODY_STATUS:
            self._finish()
        elif b"content-length" not in names and b"transfer-encoding" not in names:
            self._until_close = True  # the body ends when the connection does
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _PAUSE_BYTES:
            self._connection.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status and not self.complete:
            self._finish()

    # --- connection events ----------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.complete:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolFailed("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolFailed(f"unparsable answer from the upstream: {exc}"))

    def lost(self) -> None:
        if self.complete:
            return
        if self._until_close and self._headers_done:
            self._finish(keep_alive=False)
        else:
            self._fail(ProtocolFailed("the upstream closed the connection"))

    def _finish(self, keep_alive: bool | None = None) -> None:
        self.complete = True
        if keep_alive is None:
            keep_alive = self._parser.should_keep_alive() and not self._until_close
        self.keep_alive = keep_alive
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        self._error = error
        self.keep_alive = False
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, timeout: float) -> None:
        waiter = self._waiter = self.loop.create_future()
        deadlines = self._connection.pool.deadlines
        deadlines.watch(self, timeout)
        try:
            await waiter
        finally:
            deadlines.forget(self)
            self._waiter = None

    def expire(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(TimedOut("the upstream did not answer in time"))

    # --- for the proxy ------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._connection.loop

    @property
    def started(self) -> bool:
        """Whether any answer came back (a request that got none may be retried)."""
        return self._headers_done

    async def head(self, timeout: float) -> None:
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            await self._wait(timeout)

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The next piece of the body as it arrives (transfer coding removed, content coding
        kept); None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered <= _PAUSE_BYTES:
                    self._connection.resume_reading()
                return chunk
            if self.complete:
                return None
            if self._error is not None:
                raise self._error
            await self._wait(timeout)

    @property
    def drained(self) -> bool:
        """Whether the whole body has arrived and been taken: the last chunk was the last."""
        return self.complete and not self._chunks

    async def chunks(self, timeout: float) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk (`next_chunk` until None)."""
        while (chunk := await self.next_chunk(timeout)) is not None:
            yield chunk

    def close(self) -> None:
        """Back to the pool when the exchange ended cleanly, else closed (idempotent)."""
        if not self._closed:
            self._closed = True
            self._connection.done(self.complete and self.keep_alive and not self._chunks)


class _Deadlines:
    """One timer for every response a pool waits on, instead of one per wait: a wait ends
    with `TimedOut` between `timeout` and `timeout + tick` after it began (the tick is an
    eighth of the timeout, at most 0.25 s). Waits are short and many (one per request), so
    arming and cancelling a timer for each cost more than the tick that checks them all."""

    def __init__(self, timeout: float) -> None:
        self.tick = min(max(timeout / 8, 0.005), 0.25)
        self._waiting: dict[Response, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, response: Response, timeout: float) -> None:
        loop = self._loop = response.loop
        self._waiting[response] = loop.time() + timeout
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._check)

    def forget(self, response: Response) -> None:
        self._waiting.pop(response, None)

    def _check(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time()
        for response, deadline in list(self._waiting.items()):
            if deadline <= now:
                del self._waiting[response]
                response.expire()
        if self._waiting:
            self._timer = self._loop.call_later(self.tick, self._check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Connection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.reused = False
        self._drain: asyncio.Future[None] | None = None
        self._reading = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as ones.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: this connection is unusable
            self.close()
            return
        self.response.feed(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None:
            self.response.lost()
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ProtocolFailed("the upstream closed the connection"))

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    async def drain(self) -> None:
        if self._drain is not None:
            await self._drain

    def pause_reading(self) -> None:
        if self._reading and self.transport is not None:
            self._reading = False
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading and self.transport is not None and not self.closed:
            self._reading = True
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise ProtocolFailed("the upstream closed the connection")
        self.transport.write(data)

    def done(self, reusable: bool) -> None:
        self.response = None
        self.resume_reading()
        if reusable and not self.closed:
            self.pool.release(self)
        else:
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Keep-alive connections to one upstream base URL (`http://host:port`, or https)."""

    def __init__(self, base_url: str, timeout: float, connect_timeout: float, max_idle: int = 256):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--upstream must be http(s)://host[:port], got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.rpartition("@")[2].encode("idna")
        self.prefix = parts.path.rstrip("/").encode()
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: deque[_Connection] = deque()
        self.deadlines = _Deadlines(timeout)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.ssl
                ),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise TimedOut(f"no connection to {self.host}:{self.port} in time") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        sock = connection.transport.get_extra_info("socket") if connection.transport else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # A streamed request body is several writes: no Nagle delay between them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                connection.reused = True
                return connection
        return None

    def release(self, connection: _Connection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection.close()

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
    ) -> Response:
        """Send one request; returns once the response head has arrived."""
        names = {name.lower() for name, _ in headers}
        lines = [method, b" ", self.prefix, target, b" HTTP/1.1\r\n"]
        if b"host" not in names:
            lines += [b"host: ", self.host_header, b"\r\n"]
        for name, value in headers:
            lines += [name, b": ", value, b"\r\n"]
        chunked = False
        if isinstance(body, bytes):
            if b"content-length" not in names and (body or method in _BODY_METHODS):
                lines += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        elif b"content-length" not in names:
            lines.append(b"transfer-encoding: chunked\r\n")
            chunked = True
        lines.append(b"\r\n")
        head = b"".join(lines)
        head_only = method == b"HEAD"
        if isinstance(body, bytes):
            # Nothing was consumed from the client: a reused connection the upstream closed
            # meanwhile can be replaced once without the client noticing.
            for attempt in range(2):
                connection = self._idle_connection() or await self._connect()
                response = Response(connection, head_only)
                connection.response = response
                try:
                    connection.write(head + body)
                    await response.head(self.timeout)
                    return response
                except ProtocolFailed:
                    connection.done(False)
                    if not connection.reused or response.started or attempt:
                        raise
                except BaseException:
                    connection.done(False)
                    raise
            raise AssertionError("unreachable")
        connection = self._idle_connection() or await self._connect()
        response = Response(connection, head_only)
        connection.response = response
        try:
            connection.write(head)
            async for chunk in body:
                if chunk:
                    connection.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    await connection.drain()
            if chunked:
                connection.write(b"0\r\n\r\n")
            await response.head(self.timeout)
            return response
        except BaseException:
            connection.done(False)
            raise

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self.deadlines.close()
