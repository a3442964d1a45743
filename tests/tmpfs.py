"""A small tmpfs to fill: a full disk on demand (ENOSPC), for the queue's failure tests."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(directory: Path, size: str = "4m") -> Iterator[Path]:
    """Mount a tmpfs of `size` at `directory` (root only); unmounted afterwards.

    Skips where mounting is impossible — and fails instead under CI (`OTELML_REQUIRE_ALL`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs: {mounted.stderr.strip()}"
        if os.environ.get("OTELML_REQUIRE_ALL") or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full; delete it to give the space back."""
    filler = directory / "filler"
    block = b"\0" * 4096
    with open(filler, "ab", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler
