"""The gateway's malloc thresholds: requests come from the heap, and freed heap is kept."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

_PROBE = """
import ctypes, json, sys
from otelml.gateway import malloc

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    assert malloc.tune()
block = bytearray(8 << 20)  # a large request, as received
mmapped = libc.mallinfo2().hblkhd
del block
print(json.dumps({"mmapped": mmapped, "free_in_heap": libc.mallinfo2().fordblks}))
"""


def _probe(mode: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_large_blocks_come_from_the_heap_and_stay_there_when_freed() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("thresholds are set with glibc only")
    default, tuned = _probe("default"), _probe("tuned")
    # By default glibc maps an 8 MiB block on its own and unmaps it when freed …
    assert default["mmapped"] >= 8 << 20
    assert default["free_in_heap"] < 8 << 20
    # … tuned, it comes from the heap and is kept there for the next request.
    assert tuned["mmapped"] < 8 << 20
    assert tuned["free_in_heap"] >= 8 << 20
