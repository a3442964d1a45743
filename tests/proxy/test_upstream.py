"""The proxy's HTTP/1.1 client against a raw TCP server that answers canned bytes: framings
(Content-Length, chunked, until close, HEAD, 1xx first), keep-alive reuse, a reused
connection the server had closed, and each error as the proxy will answer it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from otelml.proxy.upstream import (
    ConnectFailed,
    ProtocolFailed,
    TimedOut,
    UpstreamPool,
)

Answer = Callable[[bytes], bytes | None]  # request bytes → answer (None: hang up)


class RawServer:
    """Reads one request head (+ Content-Length body), writes the canned answer; counts
    connections. `close_after` answers closes the connection afterwards."""

    def __init__(self, answer: Answer, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                chunked = False
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                        chunked = True
                body = await reader.readexactly(length) if length else b""
                if chunked:
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        body += (await reader.readexactly(size + 2))[:-2]
                        if size == 0:
                            break
                self.requests.append(head + body)
                answer = self.answer(head + body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve(server: RawServer) -> tuple[asyncio.Server, str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    return listener, f"http://127.0.0.1:{port}"


async def _body(pool: UpstreamPool, method: bytes = b"GET", body: bytes = b"") -> tuple[Any, ...]:
    response = await pool.request(method, b"/x", [(b"host", b"h")], body)
    chunks = [c async for c in response.chunks(5)]
    response.close()
    return response.status, response.headers, b"".join(chunks)


def _run(test: Callable[[], object]) -> None:
    async def main() -> None:
        await test()  # type: ignore[misc]
        await asyncio.sleep(0.05)  # let both ends finish closing before the loop goes

    asyncio.run(main())


def test_framings_and_keep_alive() -> None:
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",  # to HEAD: no body follows
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
        ]
    )
    server = RawServer(lambda request: next(answers))

    async def test() -> None:
        listener, url = await _serve(server)
        pool = UpstreamPool(url, timeout=5, connect_timeout=5)
        assert await _body(pool) == (
            200,
            [(b"Content-Length", b"5"), (b"X-A", b"1"), (b"X-A", b"2")],
            b"hello",
        )
        assert (await _body(pool))[2] == b"abcde"  # transfer coding removed
        assert (await _body(pool, b"POST", b"{}"))[0] == 201  # the 100 is skipped
        assert (await _body(pool))[::2] == (204, b"")
        assert (await _body(pool, b"HEAD"))[::2] == (200, b"")
        assert (await _body(pool))[2] == b"z"
        assert server.connections == 1  # one keep-alive connection for all of them
        assert server.requests[2].endswith(b"content-length: 2\r\n\r\n{}")
        pool.close()
        listener.close()

    _run(test)


def test_a_body_until_close_and_a_streamed_request_body() -> None:
    server = RawServer(lambda request: b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close_after=True)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b""
        yield b"cd"

    async def test() -> None:
        listener, url = await _serve(server)
        pool = UpstreamPool(url, timeout=5, connect_timeout=5)
        response = await pool.request(b"POST", b"/x", [], chunks())
        assert b"".join([c async for c in response.chunks(5)]) == b"until the end"
        response.close()
        assert b"transfer-encoding: chunked" in server.requests[0]
        assert server.requests[0].endswith(b"abcd")
        assert b"host: 127.0.0.1:" in server.requests[0]  # added when the client sent none
        pool.close()
        listener.close()

    _run(test)


def test_a_reused_connection_the_server_closed_is_replaced_once() -> None:
    server = RawServer(
        lambda request: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close_after=True
    )

    async def test() -> None:
        listener, url = await _serve(server)
        pool = UpstreamPool(url, timeout=5, connect_timeout=5)
        for i in range(6):
            assert (await _body(pool, b"POST", b"x"))[2] == b"ok"
            if i % 2:  # the server's close reaches the pool before the next request, or not
                await asyncio.sleep(0.05)
        assert server.connections == 6
        pool.close()
        listener.close()

    _run(test)


def test_errors_as_the_proxy_answers_them() -> None:
    async def test() -> None:
        hang_up = RawServer(lambda request: None)
        listener, url = await _serve(hang_up)
        pool = UpstreamPool(url, timeout=5, connect_timeout=5)
        with pytest.raises(ProtocolFailed):
            await pool.request(b"GET", b"/", [], b"")
        listener.close()

        garbage = RawServer(lambda request: b"SPDY/9 what\r\n\r\n")
        listener, url = await _serve(garbage)
        with pytest.raises(ProtocolFailed):
            await UpstreamPool(url, timeout=5, connect_timeout=5).request(b"GET", b"/", [], b"")
        listener.close()

        silent = RawServer(lambda request: b"")
        listener, url = await _serve(silent)
        with pytest.raises(TimedOut):
            await UpstreamPool(url, timeout=0.2, connect_timeout=5).request(b"GET", b"/", [], b"")
        listener.close()

        short = RawServer(
            lambda request: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12", close_after=True
        )
        listener, url = await _serve(short)
        response = await UpstreamPool(url, 5, 5).request(b"GET", b"/", [], b"")
        with pytest.raises(ProtocolFailed):
            [c async for c in response.chunks(5)]
        response.close()
        listener.close()

        listener, url = await _serve(RawServer(lambda request: None))
        listener.close()
        await listener.wait_closed()
        with pytest.raises(ConnectFailed):
            await UpstreamPool(url, 5, 5).request(b"GET", b"/", [], b"")

    _run(test)


def test_bad_upstream_urls_are_refused() -> None:
    for url in ("ftp://host", "host:80", "http://"):
        with pytest.raises(ValueError, match="--upstream"):
            UpstreamPool(url, 1, 1)
