"""Fixed glibc malloc thresholds for the gateway process.

glibc returns the free top of its heap to the OS once it exceeds a trim threshold that, by
default, follows the largest block recently freed (twice the mmap threshold, which itself
follows freed mmapped blocks). The gateway keeps each received request (~0.4 MB in the bench)
in memory until its exporter has sent it, some 50 ms later; the heap top then shrinks and
grows again several times a request, and every regrowth faults in freshly zeroed pages — about
0.1 ms per request in the forwarding bench (bench/forwarding.py), a third of what forwarding
costs. Fixed thresholds end the churn: blocks up to 32 MiB (every request the receivers admit
by default) come from the heap, and up to 64 MiB of free heap is kept for reuse.

Resident memory may therefore stay up to 64 MiB above live data after a burst (what
`limits.memory_limit` measures). Other C libraries (musl) are left as they are, and so is a
threshold the operator set with glibc's own variables (MALLOC_TRIM_THRESHOLD_,
MALLOC_MMAP_THRESHOLD_).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger("otelml.gateway")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 64 * 1024 * 1024
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed on 64-bit


def tune() -> bool:
    """Set the thresholds once per process; False where glibc is not the allocator."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    for variable, option, value in (
        ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    ):
        if variable not in os.environ and mallopt(option, value) != 1:
            log.info("mallopt(%d, %d) refused", option, value)
    return True
