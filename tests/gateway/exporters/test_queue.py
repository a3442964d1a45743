"""The disk queue: order, resume after restart, torn tails, bounds, segment rotation."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from otelml.errors import Refused
from otelml.gateway.exporters.queue import DiskQueue


def _drain(queue: DiskQueue) -> list[bytes]:
    out = []
    while (record := queue.peek()) is not None:
        out.append(record.payload)
        queue.ack(record)
    return out


def test_fifo_across_segments_and_restarts(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    payloads = [f"request-{i}".encode() * 3 for i in range(20)]
    for i, payload in enumerate(payloads):
        queue.append(payload, items=i)
    assert queue.pending_items == sum(range(20))
    assert len(list(tmp_path.glob("*.seg"))) > 3  # rotated
    first = queue.peek()
    assert first is not None and first.payload == payloads[0]
    queue.ack(first)
    queue.close()
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    assert reopened.pending_items == sum(range(1, 20))
    assert _drain(reopened) == payloads[1:]
    assert reopened.pending_bytes == 0 and reopened.pending_items == 0
    assert len(list(tmp_path.glob("*.seg"))) == 1  # consumed segments deleted
    reopened.close()


def test_a_torn_tail_is_cut_off(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path, max_bytes=1 << 20)
    queue.append(b"complete", items=1)
    queue.close()
    segment = next(tmp_path.glob("*.seg"))
    with open(segment, "ab") as file:
        file.write(b"\x50\x00\x00\x00garbage")  # a crash in the middle of an append
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20)
    assert _drain(reopened) == [b"complete"]
    reopened.append(b"after", items=1)
    assert _drain(reopened) == [b"after"]
    reopened.close()


def test_full_queue_refuses_with_a_retry_hint(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path, max_bytes=100)
    queue.append(b"x" * 50, items=1)
    with pytest.raises(Refused) as refused:
        queue.append(b"y" * 50, items=1)
    assert 1 <= refused.value.retry_after <= 5
    record = queue.peek()
    assert record is not None
    queue.ack(record)
    queue.append(b"y" * 50, items=1)  # room again once delivered
    queue.close()


def test_a_failed_write_leaves_no_half_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = DiskQueue(tmp_path, max_bytes=1 << 20)
    queue.append(b"before", items=1)
    real_writev = os.writev

    def disk_full(fd: int, buffers: list[memoryview]) -> int:
        real_writev(fd, [buffers[0]])  # the header made it, the payload did not
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", disk_full)
    with pytest.raises(OSError):
        queue.append(b"lost", items=1)
    monkeypatch.setattr(os, "writev", real_writev)
    queue.append(b"after", items=1)
    assert queue.pending_items == 2
    queue.close()
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20)
    assert _drain(reopened) == [b"before", b"after"]
    reopened.close()


def test_writes_of_a_few_bytes_at_a_time_still_make_whole_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev
    monkeypatch.setattr(os, "writev", lambda fd, buffers: real_writev(fd, [buffers[0][:3]]))
    queue = DiskQueue(tmp_path, max_bytes=1 << 20)
    queue.append(b"first request", items=1)
    queue.append(b"second", items=1)
    queue.close()
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20)
    assert _drain(reopened) == [b"first request", b"second"]
    reopened.close()
