"""The proxied port's transport: the writes of one loop step leave as one write on a real
socket, the bytes and their order unchanged; close() flushes first; nothing is written
after the connection closed. The proxy's end-to-end tests run through it as well."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from otelml.proxy.coalesce import CoalescingTransport


class _Counting:
    """A real transport whose write calls are counted on the way through."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _pair() -> tuple[_Counting, CoalescingTransport, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    counting = _Counting(transport)
    theirs.setblocking(False)
    return counting, CoalescingTransport(counting, loop), theirs  # type: ignore[arg-type]


async def _read(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(peer, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_one_step_one_write_same_bytes() -> None:
    async def test() -> None:
        counting, transport, peer = await _pair()
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        transport.write(b"")
        transport.write(b"hello")
        assert counting.writes == []  # not before the step ends
        head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
        assert await _read(peer, len(head)) == head
        assert counting.writes == [head]
        transport.write(b"next")  # a later step: a write of its own
        assert await _read(peer, 4) == b"next"
        assert counting.writes == [head, b"next"]
        transport.write(b"last words")
        transport.close()  # flushes first
        assert counting.writes[-1] == b"last words"
        assert await _read(peer, 100) == b"last words"  # then the end of the stream
        transport.write(b"too late")
        await asyncio.sleep(0.01)
        assert counting.writes[-1] == b"last words"
        assert transport.is_closing()
        peer.close()

    asyncio.run(test())
