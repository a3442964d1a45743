"""Admission of HTTP request bodies: size limits enforced while streaming, before decoding.

Clients may send no Content-Length (chunked) and gzip bodies; the limit applies to the
decompressed size, and decompression stops as soon as the limit is passed, so a gzip bomb
costs at most `limit` bytes of memory.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable

from otelml.errors import Permanent

REASON_TOO_LARGE = "too_large"
REASON_BODY_TIMEOUT = "body_timeout"


def _too_large(limit: int) -> Permanent:
    return Permanent(
        f"request body exceeds limits.max_request_bytes ({limit} bytes, after decompression)",
        reason=REASON_TOO_LARGE,
        http_status=413,
    )


async def read_body(
    chunks: AsyncIterator[bytes],
    limit: int,
    gzip: bool,
    content_length: int | None,
    charge: Callable[[int], None] = lambda size: None,
    timeout: float | None = None,
) -> bytes:
    """The (decompressed) body, or `Permanent` 413 past `limit` / 400 for a broken gzip stream
    / 408 when it has not all arrived within `timeout` seconds (a slow client).

    `charge(n)` is called for every `n` bytes held, as they arrive (admission's budget; it
    raises `Refused` to stop the read)."""
    if content_length is not None and not gzip and content_length > limit:
        raise _too_large(limit)
    try:
        async with asyncio.timeout(timeout):
            return await _read(chunks, limit, gzip, charge)
    except TimeoutError:
        raise Permanent(
            f"request body not received within limits.body_timeout ({timeout:g} s)",
            reason=REASON_BODY_TIMEOUT,
            http_status=408,
        ) from None


async def _read(
    chunks: AsyncIterator[bytes], limit: int, gzip: bool, charge: Callable[[int], None]
) -> bytes:
    parts: list[bytes] = []
    size = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    try:
        async for chunk in chunks:
            if inflater is None:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                charge(len(chunk))
                parts.append(chunk)
                continue
            data = chunk
            while data:
                # max_length bounds each step's output: never more than limit + 1 bytes held.
                out = inflater.decompress(data, limit + 1 - size)
                size += len(out)
                if size > limit:
                    raise _too_large(limit)
                charge(len(out))
                parts.append(out)
                data = inflater.unconsumed_tail
        if inflater is not None:
            tail = inflater.flush()
            size += len(tail)
            if size > limit:
                raise _too_large(limit)
            charge(len(tail))
            parts.append(tail)
            if not inflater.eof:
                raise Permanent("truncated gzip body", reason="malformed")
    except zlib.error as exc:
        raise Permanent(f"malformed gzip body: {exc}", reason="malformed") from None
    return b"".join(parts)
