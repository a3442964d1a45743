"""Timing helpers: repeat, take the median (2 noisy cores: never trust one run)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_second(work: Callable[[], int], seconds: float = 1.0) -> float:
    """Items per second of `work()` (returning an item count) over ~`seconds`."""
    work()  # warm-up
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += work()
    return done / elapsed


def median_rate(work: Callable[[], int], runs: int = 5, seconds: float = 1.0) -> float:
    return statistics.median(per_second(work, seconds) for _ in range(runs))


def median_time(work: Callable[[], object], runs: int = 7) -> float:
    """Median wall time of one call, seconds."""
    work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def round_ratios(out: dict[str, float], name: str, top: list[float], bottom: list[float]) -> None:
    """Into `out`: the median of the per-round ratios top/bottom as `name`, their range as
    `name_min` and `name_max` (each ratio taken within one round, same minute of noise)."""
    ratios = [t / b for t, b in zip(top, bottom, strict=True)]
    out[name] = statistics.median(ratios)
    out[f"{name}_min"], out[f"{name}_max"] = min(ratios), max(ratios)


def ratio_text(results: dict[str, float], name: str) -> str:
    """`median [min–max]` of a ratio `round_ratios` stored."""
    return f"{results[name]:.2f} [{results[f'{name}_min']:.2f}–{results[f'{name}_max']:.2f}]"
