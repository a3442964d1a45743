"""A durable FIFO queue on disk, one per destination: what was acknowledged is never lost.

A request is appended (length, CRC-32, item count, payload) to the active segment file before
the client gets its answer; the sender reads records in order and moves a cursor past each one
it delivered or dropped with a counted reason. The cursor is written atomically (write + rename),
so after a crash the queue resumes at the first record not known to be done (at-least-once:
a record sent just before a crash may be sent again). A torn record at the tail — a crash in the
middle of an append — fails its CRC and is cut off at start-up; it was never acknowledged.

`fsync` decides what survives what:
- "always": every append is fsynced before the acknowledgement — survives a node crash;
- "interval" (default): the gateway fsyncs once a second, in a worker thread so the event
  loop goes on receiving — a process crash (kill -9) loses nothing (the page cache holds the
  data), a node crash may lose the last second;
- "never": the OS decides — survives process crashes only.

An append is one unbuffered `writev` of header and payload (no copy of the payload in user
space); the payload also stays in memory until delivered, so the sender rarely reads back.

Bounded by `max_bytes` (undelivered bytes): when full, `append` raises `Refused`, which the
receivers turn into gRPC UNAVAILABLE + RetryInfo / HTTP 503 + Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from otelml.errors import Refused

FsyncPolicy = Literal["always", "interval", "never"]

_HEADER = struct.Struct("<IIQ")  # payload length, crc32 of payload, item count
_SEGMENT_BYTES = 64 * 1024 * 1024
_CURSOR = "cursor"
_RECENT_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Record:
    segment: int
    offset: int
    size: int  # header + payload
    items: int
    payload: bytes


class DiskQueue:
    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        fsync: FsyncPolicy = "interval",
        segment_bytes: int = _SEGMENT_BYTES,
    ) -> None:
        self.segment_bytes = segment_bytes
        self.directory = directory
        self.max_bytes = max_bytes
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._segments = sorted(int(p.stem) for p in directory.glob("*.seg"))
        self._read_segment, self._read_offset = self._load_cursor()
        self._repair_tail()
        if not self._segments:
            self._segments = [1]
            (directory / self._name(1)).touch()
        if self._read_segment not in self._segments:
            self._read_segment, self._read_offset = self._segments[0], 0
        self._writer, self._write_offset = self._open_writer(self._segments[-1])
        #: Descriptors of rotated segments written since the last fsync (the "interval" policy).
        self._unsynced: list[int] = []
        self._reader: BinaryIO | None = None
        self._recent: OrderedDict[tuple[int, int], Record] = OrderedDict()
        self._recent_bytes = 0
        self._cursor_saved_at = 0.0
        self._cursor_dirty = False
        self._reader_segment = -1
        self._dirty = False
        self.pending_bytes = self._measure_pending()
        self.pending_items = self._count_pending_items()

    def _open_writer(self, segment: int) -> tuple[int, int]:
        fd = os.open(self.directory / self._name(segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return fd, os.fstat(fd).st_size

    @staticmethod
    def _name(segment: int) -> str:
        return f"{segment:012d}.seg"

    def _load_cursor(self) -> tuple[int, int]:
        try:
            segment, offset = (self.directory / _CURSOR).read_text().split()
            return int(segment), int(offset)
        except (OSError, ValueError):
            return (self._segments[0] if self._segments else 1), 0

    def _save_cursor(self) -> None:
        temporary = self.directory / f"{_CURSOR}.tmp"
        temporary.write_text(f"{self._read_segment} {self._read_offset}")
        os.replace(temporary, self.directory / _CURSOR)

    def _repair_tail(self) -> None:
        """Cut a torn or corrupt record off the last segment (it was never acknowledged)."""
        if not self._segments:
            return
        path = self.directory / self._name(self._segments[-1])
        data = path.read_bytes()
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, crc, _ = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if end > len(data) or zlib.crc32(data[offset + _HEADER.size : end]) != crc:
                break
            offset = end
        if offset != len(data):
            with open(path, "r+b") as file:
                file.truncate(offset)

    def _records(self, segment: int, start: int) -> list[Record]:
        data = (self.directory / self._name(segment)).read_bytes()
        out = []
        offset = start
        while offset + _HEADER.size <= len(data):
            length, _, items = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if end > len(data):
                break
            out.append(
                Record(segment, offset, end - offset, items, data[offset + _HEADER.size : end])
            )
            offset = end
        return out

    def _measure_pending(self) -> int:
        total = 0
        for segment in self._segments:
            if segment < self._read_segment:
                continue
            size = (self.directory / self._name(segment)).stat().st_size
            total += size - (self._read_offset if segment == self._read_segment else 0)
        return total

    def _count_pending_items(self) -> int:
        return sum(
            r.items
            for segment in self._segments
            if segment >= self._read_segment
            for r in self._records(
                segment, self._read_offset if segment == self._read_segment else 0
            )
        )

    def append(self, payload: bytes, items: int) -> None:
        """Persist one request; `Refused` when the queue is full (the client retries later)."""
        size = _HEADER.size + len(payload)
        if self.pending_bytes + size > self.max_bytes:
            raise Refused(
                f"queue {self.directory.name} is full ({self.pending_bytes} of "
                f"{self.max_bytes} bytes undelivered)",
                retry_after=2.0,
            )
        if self._write_offset + size > self.segment_bytes and self._write_offset > 0:
            self._rotate()
        offset = self._write_offset
        # One unbuffered writev of header and payload: no copy of the payload in user space.
        header = _HEADER.pack(len(payload), zlib.crc32(payload), items)
        try:
            _write_all(self._writer, header, payload)
        except OSError:
            # A failed write (a full disk) must not leave half a record for the next to follow.
            with contextlib.suppress(OSError):
                os.ftruncate(self._writer, offset)
            raise
        self._write_offset += size
        # Recent records stay in memory too: the sender usually reads them back at once.
        self._recent[(self._segments[-1], offset)] = Record(
            self._segments[-1], offset, size, items, payload
        )
        self._recent_bytes += size
        while self._recent_bytes > _RECENT_BYTES:
            _, old = self._recent.popitem(last=False)
            self._recent_bytes -= old.size
        if self.fsync == "always":
            os.fsync(self._writer)
        elif self.fsync == "interval":
            self._dirty = True
        self.pending_bytes += size
        self.pending_items += items

    def _rotate(self) -> None:
        if self._dirty:
            self._unsynced.append(self._writer)  # fsynced (and closed) by the next sync
        else:
            os.close(self._writer)
        segment = self._segments[-1] + 1
        self._segments.append(segment)
        self._writer, self._write_offset = self._open_writer(segment)

    def _take_unsynced(self) -> list[int]:
        """Descriptors to fsync for the writes so far (duplicates: the caller closes them)."""
        if self._cursor_dirty:
            self._save_cursor()
            self._cursor_dirty = False
        if not self._dirty:
            return []
        self._dirty = False
        fds, self._unsynced = self._unsynced, []
        return [*fds, os.dup(self._writer)]

    def sync(self) -> None:
        """The periodic fsync of the "interval" policy (and a pending cursor save)."""
        _fsync_and_close(self._take_unsynced())

    async def sync_in_thread(self) -> None:
        """`sync` with the fsyncs in a worker thread: flushing a second of writes can take a
        while, and the event loop (the receivers) goes on serving meanwhile."""
        fds = self._take_unsynced()
        if fds:
            try:
                await asyncio.to_thread(_fsync_and_close, fds)
            except BaseException:
                self._dirty = True  # not known to be on disk: the next sync tries again
                raise

    def _read_at(self, segment: int, offset: int) -> Record | None:
        """One record: from memory if recent, else read straight from its offset."""
        cached = self._recent.pop((segment, offset), None)
        if cached is not None:
            self._recent_bytes -= cached.size
            self._recent[(segment, offset)] = cached  # keep it until acknowledged
            self._recent_bytes += cached.size
            return cached
        if self._reader is None or self._reader_segment != segment:
            if self._reader is not None:
                self._reader.close()
            self._reader = open(self.directory / self._name(segment), "rb")  # noqa: SIM115
            self._reader_segment = segment
        self._reader.seek(offset)
        header = self._reader.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None
        length, _, items = _HEADER.unpack(header)
        payload = self._reader.read(length)
        if len(payload) < length:
            return None
        return Record(segment, offset, _HEADER.size + length, items, payload)

    def peek(self) -> Record | None:
        """The oldest undelivered record, or None."""
        while True:
            record = self._read_at(self._read_segment, self._read_offset)
            if record is not None:
                return record
            later = [s for s in self._segments if s > self._read_segment]
            if not later:
                return None
            self._drop_segment(self._read_segment)
            self._read_segment, self._read_offset = later[0], 0
            self._save_cursor()

    def peek_many(self, max_bytes: int) -> list[Record]:
        """The oldest undelivered records, up to `max_bytes` of payload (at least one)."""
        first = self.peek()
        if first is None:
            return []
        records = [first]
        size = len(first.payload)
        offset = first.offset + first.size
        while True:
            record = self._read_at(first.segment, offset)
            if record is None or size + len(record.payload) > max_bytes:
                return records
            records.append(record)
            size += len(record.payload)
            offset += record.size

    def ack(self, record: Record) -> None:
        """The record is done (delivered, or dropped and counted): move past it."""
        self.ack_many([record])

    def ack_many(self, records: list[Record]) -> None:
        """The records (in queue order) are done: move past them.

        The cursor reaches the disk at most every 50 ms (and at `sync`/`close`): after a crash
        a few delivered records may be sent again — at least once, never lost.
        """
        for record in records:
            cached = self._recent.pop((record.segment, record.offset), None)
            if cached is not None:
                self._recent_bytes -= cached.size
            self.pending_bytes -= record.size
            self.pending_items -= record.items
        last = records[-1]
        self._read_segment, self._read_offset = last.segment, last.offset + last.size
        now = time.monotonic()
        if now - self._cursor_saved_at > 0.05:
            self._save_cursor()
            self._cursor_saved_at = now
        else:
            self._cursor_dirty = True

    def _drop_segment(self, segment: int) -> None:
        if segment == self._segments[-1]:
            return
        if self._reader_segment == segment and self._reader is not None:
            self._reader.close()
            self._reader, self._reader_segment = None, -1
        (self.directory / self._name(segment)).unlink(missing_ok=True)
        self._segments.remove(segment)

    def close(self) -> None:
        self.sync()
        os.close(self._writer)
        if self._reader is not None:
            self._reader.close()


def _fsync_and_close(fds: list[int]) -> None:
    """Runs to the end even if its caller is cancelled: the descriptors are its own."""
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)


def _write_all(fd: int, *parts: bytes) -> None:
    """writev until every byte is written (a regular file may take fewer at once)."""
    views = [memoryview(part) for part in parts]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views:
            views[0] = views[0][written:]
