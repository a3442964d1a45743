"""The disk queue: order, resume after restart, torn tails, bounds, segment rotation."""

from __future__ import annotations

import errno
import os
import struct
import zlib
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
    real_pwritev = os.pwritev

    def disk_full(fd: int, buffers: list[memoryview], offset: int) -> int:
        real_pwritev(fd, [buffers[0]], offset)  # the header made it, the payload did not
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwritev", disk_full)
    with pytest.raises(OSError):
        queue.append(b"lost", items=1)
    monkeypatch.setattr(os, "pwritev", real_pwritev)
    queue.append(b"after", items=1)
    assert queue.pending_items == 2
    queue.close()
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20)
    assert _drain(reopened) == [b"before", b"after"]
    reopened.close()


def test_writes_of_a_few_bytes_at_a_time_still_make_whole_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pwritev = os.pwritev
    monkeypatch.setattr(
        os, "pwritev", lambda fd, buffers, offset: real_pwritev(fd, [buffers[0][:3]], offset)
    )
    queue = DiskQueue(tmp_path, max_bytes=1 << 20)
    queue.append(b"first request", items=1)
    queue.append(b"second", items=1)
    queue.close()
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20)
    assert _drain(reopened) == [b"first request", b"second"]
    reopened.close()


def test_consumed_segments_are_reused_and_their_leftovers_never_replayed(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=200)
    old = [f"old-{i:03d}".encode() * 8 for i in range(12)]  # 64 bytes each: 2 per segment
    for payload in old:
        queue.append(payload, items=1)
    assert _drain(queue) == old
    spares = sorted(p.name for p in tmp_path.glob("*.spare"))
    assert len(spares) == 2  # the rest deleted
    inodes = {(tmp_path / name).stat().st_ino for name in spares}
    new = [b"new-short", b"new-longer-than-short" * 3, b"x"]
    for payload in new:
        queue.append(payload, items=2)
    queue.close()
    # The new records were written over the spares' files; the rest of the old contents is
    # still in them after the new records, and must not come back after a restart.
    segments = sorted(tmp_path.glob("*.seg"))
    assert {p.stat().st_ino for p in segments} & inodes
    assert any(b"old-" in p.read_bytes() for p in segments)
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=200)
    assert reopened.pending_items == 6
    assert reopened.pending_bytes == sum(16 + len(p) for p in new)
    assert _drain(reopened) == new
    reopened.close()


def test_a_spare_renamed_into_place_but_never_written_replays_nothing(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    for i in range(6):
        queue.append(f"done-{i}".encode() * 10, items=1)
    assert len(_drain(queue)) == 6
    queue.close()
    spare = sorted(tmp_path.glob("*.spare"))[0]
    last = max(int(p.stem) for p in tmp_path.glob("*.seg"))
    # A crash between the rename and the first write of the reused file.
    os.replace(spare, tmp_path / f"{last + 1:012d}.seg")
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    assert reopened.pending_items == 0 and reopened.peek() is None
    reopened.append(b"fresh", items=1)
    assert _drain(reopened) == [b"fresh"]
    reopened.close()


def test_records_of_the_previous_format_are_delivered_after_an_upgrade(tmp_path: Path) -> None:
    """The previous format: header (length, zlib CRC-32 of the payload, 64-bit item count)."""
    old = [b"queued before the upgrade", b"and this one"]
    with open(tmp_path / "000000000007.seg", "wb") as file:
        for payload in old:
            file.write(struct.pack("<IIQ", len(payload), zlib.crc32(payload), 3) + payload)
    queue = DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    assert queue.pending_items == 6
    queue.append(b"after the upgrade " * 5, items=1)  # does not fit: a new segment
    assert _drain(queue) == [*old, b"after the upgrade " * 5]
    assert not list(tmp_path.glob("*.spare"))  # an old-format file is deleted, not reused
    queue.close()


def test_a_damaged_header_ends_the_segment_there(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path, max_bytes=1 << 20)
    for payload in (b"first", b"second", b"third"):
        queue.append(payload, items=1)
    queue.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[16 + 5 + 8] ^= 0x01  # the item count of the second record: the CRC covers it
    segment.write_bytes(bytes(data))
    reopened = DiskQueue(tmp_path, max_bytes=1 << 20)
    assert _drain(reopened) == [b"first"]
    reopened.close()
