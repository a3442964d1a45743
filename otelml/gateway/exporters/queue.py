"""A durable FIFO queue on disk, one per destination: what was acknowledged is never lost.

A request is appended as one record — a 16-byte header (payload length, CRC-32C, item count,
segment tag) and the payload — to the active segment file before the client gets its answer;
the sender reads records in order and moves a cursor past each one it delivered or dropped with
a counted reason. The cursor is written atomically (write + rename), so after a crash the queue
resumes at the first record not known to be done (at-least-once: a record sent just before a
crash may be sent again). A torn record at the tail — a crash in the middle of an append —
fails its CRC and ends the segment at start-up; it was never acknowledged.

Segments are 64 MiB files. A consumed segment is kept (up to two) and reused for a later one:
writing over pages the page cache already holds costs about a third of filling new ones
(no page or block allocation, nothing freed on delete). Each record therefore carries its
segment's number (the tag), and the CRC covers the header: what is left of a file's earlier
life after the last record written is recognised as not this segment's, never replayed.
Records of the previous format (zlib CRC-32, no tag; tag bits zero) are still read.

`fsync` decides what survives what:
- "always": every append is fsynced (and a new segment's directory entry) before the
  acknowledgement — survives a node crash;
- "interval" (default): the gateway fsyncs once a second, in a worker thread so the event
  loop goes on receiving — a process crash (kill -9) loses nothing (the page cache holds the
  data), a node crash may lose the last second;
- "never": the OS decides — survives process crashes only.

An append is one `pwritev` of header and payload (no copy of the payload in user space); the
payload also stays in memory until delivered, so the sender rarely reads back.

Bounded by `max_bytes` (undelivered bytes): when full, `append` raises `Refused`, which the
receivers turn into gRPC UNAVAILABLE + RetryInfo / HTTP 503 + Retry-After. A full disk makes
`append` raise `OSError` with the queue unchanged (the sender answers it like a full queue); a
cursor that cannot be saved stays dirty and is saved by the next attempt. Spare segments
(at most two) take disk space beyond it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import google_crc32c

from otelml.errors import Refused

FsyncPolicy = Literal["always", "interval", "never"]

log = logging.getLogger("otelml.gateway.queue")

#: payload length, CRC, item count, tag. The tag's top bit marks the current format (CRC-32C
#: over the payload and the other three fields, tag = segment number); records of the previous
#: format had a 64-bit item count there, so its top bits are zero.
_HEADER = struct.Struct("<IIII")
_CHECKED = struct.Struct("<III")  # the header fields the CRC covers, besides the payload
_TAGGED = 0x8000_0000
_SEGMENT_BYTES = 64 * 1024 * 1024
_SPARES = 2
_CURSOR = "cursor"
_RECENT_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Record:
    segment: int
    offset: int
    size: int  # header + payload
    items: int
    payload: bytes


def _tag(segment: int) -> int:
    return _TAGGED | (segment & 0x7FFF_FFFF)


def _crc(payload: bytes, length: int, items: int, tag: int) -> int:
    checked = _CHECKED.pack(length, items, tag)
    return int(google_crc32c.extend(google_crc32c.value(payload), checked))


def _parse(data: bytes | memoryview, offset: int, segment: int, tagged: bool) -> Record | None:
    """The record at `offset` if it is whole, intact and this segment's; else None.

    `tagged`: a record of the current format came before in this segment, so one of the
    previous format can only be left over from the file's earlier life.
    """
    if offset + _HEADER.size > len(data):
        return None
    length, crc, items, tag = _HEADER.unpack_from(data, offset)
    end = offset + _HEADER.size + length
    if end > len(data):
        return None
    payload = bytes(data[offset + _HEADER.size : end])
    if tag & _TAGGED:
        if tag != _tag(segment) or crc != _crc(payload, length, items, tag):
            return None
    elif tagged or crc != zlib.crc32(payload):
        return None
    return Record(segment, offset, end - offset, _count(items, tag), payload)


def _count(items: int, tag: int) -> int:
    """A header's item count: the previous format's was 64 bits, its top half where the tag is."""
    return items if tag & _TAGGED else items | tag << 32


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
        self._spares = sorted(directory.glob("*.spare"))
        segments = sorted(int(p.stem) for p in directory.glob("*.seg"))
        self._read_segment, self._read_offset = self._load_cursor(segments)
        #: Where each segment's records end; the last one is where the next append goes.
        self._ends: dict[int, int] = {}
        #: Segments written in the previous format: never reused (no tags to tell leftovers).
        self._untagged: set[int] = set()
        pending_items = 0
        for segment in segments:
            start = self._read_offset if segment == self._read_segment else 0
            records, end, reusable = self._scan(segment)
            self._ends[segment] = end
            if not reusable:
                self._untagged.add(segment)
            if segment >= self._read_segment:
                pending_items += sum(r.items for r in records if r.offset >= start)
        if not segments:
            first = max((int(p.stem) for p in self._spares), default=0) + 1
            segments = [first]
            self._ends[first] = 0
            (directory / self._name(first)).touch()
        self._segments = segments
        if self._read_segment not in self._ends:
            self._read_segment, self._read_offset = segments[0], 0
        self._writer = self._open_writer(segments[-1])
        self._write_offset = self._ends[segments[-1]]
        #: Descriptors of rotated segments written since the last fsync (the "interval" policy).
        self._unsynced: list[int] = []
        self._directory_dirty = False
        self._reader: BinaryIO | None = None
        self._recent: OrderedDict[tuple[int, int], Record] = OrderedDict()
        self._recent_bytes = 0
        self._cursor_saved_at = 0.0
        self._cursor_dirty = False
        self._reader_segment = -1
        self._dirty = False
        self.pending_bytes = sum(
            self._ends[s] - (self._read_offset if s == self._read_segment else 0)
            for s in segments
            if s >= self._read_segment
        )
        self.pending_items = pending_items

    def _open_writer(self, segment: int) -> int:
        return os.open(self.directory / self._name(segment), os.O_WRONLY | os.O_CREAT, 0o644)

    @staticmethod
    def _name(segment: int) -> str:
        return f"{segment:012d}.seg"

    def _load_cursor(self, segments: list[int]) -> tuple[int, int]:
        try:
            segment, offset = (self.directory / _CURSOR).read_text().split()
            return int(segment), int(offset)
        except (OSError, ValueError):
            return (segments[0] if segments else 1), 0

    def _save_cursor(self) -> None:
        """Raises OSError (a full disk) with the cursor left dirty: the next save retries, and
        the cursor on disk stays the previous one (at least once, never lost)."""
        self._cursor_dirty = True
        temporary = self.directory / f"{_CURSOR}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f"{self._read_segment} {self._read_offset}".encode())
        finally:
            os.close(fd)
        os.replace(temporary, self.directory / _CURSOR)
        self._cursor_dirty = False

    def flush_cursor(self) -> None:
        """Save a cursor an earlier failure left unsaved (OSError while it still fails)."""
        if self._cursor_dirty:
            self._save_cursor()

    def _scan(self, segment: int) -> tuple[list[Record], int, bool]:
        """(records, where they end, whether the file may be reused): the segment read up to
        its first record that is torn, corrupt or left over from the file's earlier life.
        Only files of the current format are reused (empty ones count as such)."""
        data = memoryview((self.directory / self._name(segment)).read_bytes())
        records: list[Record] = []
        offset = 0
        tagged = False
        while (record := _parse(data, offset, segment, tagged)) is not None:
            records.append(record)
            tagged = tagged or _HEADER.unpack_from(data, offset)[3] & _TAGGED != 0
            offset += record.size
        return records, offset, tagged or len(data) == 0

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
        segment, offset = self._segments[-1], self._write_offset
        tag = _tag(segment)
        header = _HEADER.pack(len(payload), _crc(payload, len(payload), items, tag), items, tag)
        # A failed write (a full disk) leaves at most a torn record, which the next append
        # overwrites and a restart does not read past.
        _write_all(self._writer, offset, header, payload)
        if self.fsync == "always":
            self._sync_directory()
            os.fdatasync(self._writer)
        elif self.fsync == "interval":
            self._dirty = True
        self._write_offset += size
        self._ends[segment] = self._write_offset
        # Recent records stay in memory too: the sender usually reads them back at once.
        self._recent[(segment, offset)] = Record(segment, offset, size, items, payload)
        self._recent_bytes += size
        while self._recent_bytes > _RECENT_BYTES:
            _, old = self._recent.popitem(last=False)
            self._recent_bytes -= old.size
        self.pending_bytes += size
        self.pending_items += items

    def _rotate(self) -> None:
        """The next segment; an OSError (a full disk) leaves the queue as it was."""
        segment = self._segments[-1] + 1
        path = self.directory / self._name(segment)
        if self._spares:
            os.replace(self._spares[0], path)
            self._spares.pop(0)
        writer = self._open_writer(segment)
        if self._dirty:
            self._unsynced.append(self._writer)  # fsynced (and closed) by the next sync
        else:
            os.close(self._writer)
        self._segments.append(segment)
        self._ends[segment] = 0
        self._writer = writer
        self._write_offset = 0
        self._directory_dirty = True
        # Reused pages the page cache has dropped are read back ahead of the writes (a write
        # that does not cover a whole page would otherwise wait for a read).
        os.posix_fadvise(self._writer, 0, 0, os.POSIX_FADV_WILLNEED)

    def _sync_directory(self) -> None:
        """A new or renamed segment file's name is on disk only once its directory is."""
        if self._directory_dirty:
            self._directory_dirty = False
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _take_unsynced(self) -> list[int]:
        """Descriptors to fsync for the writes so far (duplicates: the caller closes them)."""
        self.flush_cursor()
        if not self._dirty:
            return []
        self._dirty = False
        fds, self._unsynced = self._unsynced, []
        if self._directory_dirty:
            self._directory_dirty = False
            fds.append(os.open(self.directory, os.O_RDONLY))
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
        if offset >= self._ends.get(segment, 0):
            return None
        cached = self._recent.pop((segment, offset), None)
        if cached is not None:
            self._recent[(segment, offset)] = cached  # keep it until acknowledged
            return cached
        if self._reader is None or self._reader_segment != segment:
            if self._reader is not None:
                self._reader.close()
            self._reader = open(self.directory / self._name(segment), "rb")  # noqa: SIM115
            self._reader_segment = segment
        self._reader.seek(offset)
        header = self._reader.read(_HEADER.size)
        length, _, items, tag = _HEADER.unpack(header)
        payload = self._reader.read(length)
        return Record(segment, offset, _HEADER.size + length, _count(items, tag), payload)

    def peek(self) -> Record | None:
        """The oldest undelivered record, or None."""
        while True:
            record = self._read_at(self._read_segment, self._read_offset)
            if record is not None:
                return record
            later = [s for s in self._segments if s > self._read_segment]
            if not later:
                return None
            self._retire(self._read_segment)
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

    def _retire(self, segment: int) -> None:
        """A consumed segment: kept as a spare for a later segment, or deleted."""
        if segment == self._segments[-1]:
            return
        if self._reader_segment == segment and self._reader is not None:
            self._reader.close()
            self._reader, self._reader_segment = None, -1
        path = self.directory / self._name(segment)
        if len(self._spares) < _SPARES and segment not in self._untagged:
            spare = path.with_suffix(".spare")
            os.replace(path, spare)
            self._spares.append(spare)
        else:
            path.unlink(missing_ok=True)
        self._segments.remove(segment)
        del self._ends[segment]

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


def _write_all(fd: int, offset: int, *parts: bytes) -> None:
    """pwritev until every byte is written (a regular file may take fewer at once)."""
    views = [memoryview(part) for part in parts]
    while views:
        written = os.pwritev(fd, views, offset)
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views:
            views[0] = views[0][written:]
