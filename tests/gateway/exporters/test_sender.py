"""The sender's coalescing: a lone request goes at once, a burst goes in few calls."""

from __future__ import annotations

import asyncio
from pathlib import Path

from otelml.gateway.exporters.queue import DiskQueue
from otelml.gateway.exporters.sender import Outcome, RetryPolicy, Sender


class Recorder:
    def __init__(self) -> None:
        self.calls: list[bytes] = []

    async def send(self, parts: list[bytes]) -> Outcome:
        self.calls.append(b"".join(parts))
        return Outcome(True)

    async def close(self) -> None:
        pass


def test_a_lone_request_goes_at_once_and_a_burst_in_full_batches(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[bytes], float, Sender]:
        transport = Recorder()
        sender = Sender("traces", "spans", DiskQueue(tmp_path, 1 << 30), transport, RetryPolicy())
        sender.batch_bytes = 1000
        sender.linger = 0.2
        sender.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        sender.enqueue(b"a" * 100, 1)
        while not transport.calls:
            await asyncio.sleep(0.001)
        first = loop.time() - started
        for _ in range(25):  # 2,500 bytes during the linger: two full batches and the rest
            sender.enqueue(b"b" * 100, 1)
        while sender.queue.pending_items:
            await asyncio.sleep(0.01)
        await sender.stop()
        return transport.calls, first, sender

    calls, first, sender = asyncio.run(scenario())
    assert first < 0.1  # no linger after a quiet spell
    assert [len(c) for c in calls] == [100, 1000, 1000, 500]
    assert sender.stats.sent["spans"] == 26
