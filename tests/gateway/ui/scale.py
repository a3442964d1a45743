"""A gateway with 100 models × 20 features, all profiled and drifting: the UI's scale case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from otelml import profile, semconv
from otelml.config import parse
from otelml.gateway.app import Gateway
from tests.gateway.otlp_builders import traces
from tests.gateway.ui.drifting import sample_every_request


def fed_at_scale(directory: Path, models: int, features: int, steps: int = 6) -> Gateway:
    """`features` numeric features per model (the last one categorical), `steps` drift steps."""
    sample_every_request()
    rng = np.random.default_rng(3)
    columns = {f"f{i}": rng.normal(i, 1 + i % 3, 3000) for i in range(features - 1)}
    columns[f"f{features - 1}"] = rng.choice(["a", "b", "c", "d"], 3000)
    reference = profile.build(pd.DataFrame(columns), predictions=[])
    path = directory / "reference.json"
    profile.save(reference, path)
    config = parse(
        {
            "models": [
                {"name": f"m{m}", "version": "1", "reference": str(path), "window": 3, "step": 1}
                for m in range(models)
            ],
            "limits": {"max_series": 1_000_000},
            "receivers": {"otlp": {"grpc": None, "http": None}},
            "admin": {"endpoint": "127.0.0.1:0"},
        }
    )
    gateway = Gateway(config, forward=False)
    assert gateway.state.drift is not None
    trace = 1
    for step in range(steps):
        for m in range(models):
            spans: list[dict[str, Any]] = []
            for _ in range(40):
                row: dict[str, Any] = {semconv.MODEL_NAME: f"m{m}", semconv.MODEL_VERSION: "1"}
                shift = 1.5 if step >= steps // 2 and m % 2 == 0 else 0.0
                for i in range(features - 1):
                    row[f"{semconv.FEATURE_PREFIX}f{i}"] = float(rng.normal(i + shift, 1 + i % 3))
                row[f"{semconv.FEATURE_PREFIX}f{features - 1}"] = str(rng.choice(["a", "b", "c"]))
                row[semconv.PREDICTION] = float(rng.uniform())
                spans.append(row)
            gateway.pipeline.consume_traces(traces(spans, first_trace=trace), "grpc")
            trace += len(spans)
        gateway.state.drift.evaluate(gateway.state.store, float(step))
    return gateway
