"""The upstream client's one timer per pool: every wait still ends with TimedOut within its
timeout and one tick (many at once, a head, a stalled body), no timer stays armed once
nothing waits; and `next_chunk`/`drained`, which let the proxy answer in one message."""

from __future__ import annotations

import asyncio
import time

import pytest

from otelml.proxy.upstream import TimedOut, UpstreamPool
from tests.proxy.test_upstream import RawServer, _run, _serve


def test_many_waits_time_out_together_within_one_tick() -> None:
    silent = RawServer(lambda request: b"")

    async def test() -> None:
        listener, url = await _serve(silent)
        pool = UpstreamPool(url, timeout=0.4, connect_timeout=5)
        assert pool.deadlines.tick == 0.05

        async def one() -> float:
            start = time.monotonic()
            with pytest.raises(TimedOut):
                await pool.request(b"GET", b"/", [], b"")
            return time.monotonic() - start

        waited = await asyncio.gather(*(one() for _ in range(20)))
        assert silent.connections == 20
        assert min(waited) >= 0.4
        assert max(waited) < 5.0  # 0.45 s on an idle machine; this one is shared
        assert pool.deadlines._waiting == {}
        await asyncio.sleep(0.2)  # the last tick found nothing waiting and did not re-arm
        assert pool.deadlines._timer is None
        pool.close()
        listener.close()

    _run(test)


def test_a_body_that_stalls_times_out_and_the_answer_that_came_is_kept() -> None:
    stalls = RawServer(lambda request: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123")

    async def test() -> None:
        listener, url = await _serve(stalls)
        pool = UpstreamPool(url, timeout=0.3, connect_timeout=5)
        response = await pool.request(b"GET", b"/", [], b"")
        assert response.status == 200
        assert await response.next_chunk(0.3) == b"0123"
        assert not response.drained
        start = time.monotonic()
        with pytest.raises(TimedOut):
            await response.next_chunk(0.3)
        assert time.monotonic() - start >= 0.3
        response.close()
        pool.close()
        listener.close()

    _run(test)


def test_a_whole_answer_is_drained_with_its_last_chunk() -> None:
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ]
    )
    server = RawServer(lambda request: next(answers))

    async def test() -> None:
        listener, url = await _serve(server)
        pool = UpstreamPool(url, timeout=5, connect_timeout=5)
        response = await pool.request(b"GET", b"/", [], b"")
        assert not response.drained  # its body is not taken yet
        assert await response.next_chunk(5) == b"hello"
        assert response.drained
        assert await response.next_chunk(5) is None
        response.close()
        response = await pool.request(b"GET", b"/", [], b"")
        assert response.status == 204 and response.drained
        assert await response.next_chunk(5) is None
        response.close()
        assert server.connections == 1
        pool.close()
        listener.close()

    _run(test)


def test_ticks_follow_the_timeout() -> None:
    assert UpstreamPool("http://h", 60, 10).deadlines.tick == 0.25
    assert UpstreamPool("http://h", 0.8, 10).deadlines.tick == 0.1
    assert UpstreamPool("http://h", 0.01, 10).deadlines.tick == 0.005
