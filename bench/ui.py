"""The UI's API at the scale of 100 models × 20 features, all profiled and half drifting: how
long each answer takes (median of 7 after one warm-up), read from the same in-process state
the admin port serves. The state is the UI tests' scale fixture, so the bench and the tests'
correctness checks look at the same gateway."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.timing import median_time
from otelml.gateway.ui import query
from tests.gateway.ui.scale import fed_at_scale

MODELS, FEATURES, REPEATS = 100, 20, 7


def run() -> dict[str, float]:
    """Seconds per answer, by call."""
    with tempfile.TemporaryDirectory() as directory:
        state = fed_at_scale(Path(directory), models=MODELS, features=FEATURES).state
        calls: dict[str, Callable[[], Any]] = {
            "models": lambda: query.models(state),
            "model": lambda: query.model(state, "m42", "1", None),
            "series": lambda: query.series(state, "m42", "1", "feature", "f3", None),
        }
        return {name: median_time(call, REPEATS) for name, call in calls.items()}


def report(figures: dict[str, float]) -> str:
    calls = ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in figures.items())
    return f"UI API, {MODELS} models × {FEATURES} features: {calls}   target < 50 ms each"


if __name__ == "__main__":
    print(report(run()))
