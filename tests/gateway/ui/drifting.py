"""A gateway state fed with a drifting stream, in-process: what the UI tests look at."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from otelml import profile, semconv
from otelml.config import GatewayConfig, parse
from otelml.gateway.app import Gateway
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.samples import RequestSamples
from tests.gateway.otlp_builders import traces

MODEL, VERSION = "churn", "3"
CONTRACTS = ["monthly", "yearly", "two-year"]
F = semconv.FEATURE_PREFIX


def inputs(rng: np.random.Generator, rows: int, drifted: bool) -> pd.DataFrame:
    """age moves up and the contract mix flips when `drifted`; tenure never moves."""
    return pd.DataFrame(
        {
            "age": rng.normal(60 if drifted else 40, 8, rows).round(1),
            "tenure": rng.normal(24, 6, rows).round(1),
            "contract": rng.choice(
                CONTRACTS, rows, p=[0.2, 0.3, 0.5] if drifted else [0.6, 0.3, 0.1]
            ),
        }
    )


def config(directory: Path, **overrides: Any) -> GatewayConfig:
    rng = np.random.default_rng(7)
    training = inputs(rng, 5000, drifted=False)
    training["prediction"] = rng.uniform(0, 1, 5000)
    reference = profile.build(training, model=MODEL, version=VERSION, predictions=["prediction"])
    path = directory / "reference.json"
    profile.save(reference, path)
    data: dict[str, Any] = {
        "receivers": {
            "otlp": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}}
        },
        "admin": {"endpoint": "127.0.0.1:0"},
        "models": [
            {
                "name": MODEL,
                "version": VERSION,
                "reference": str(path),
                "window": 4,
                "step": 1,
                "drift": {"min_samples": 50},
                "segments": ["contract"],
            }
        ],
    }
    data.update(overrides)
    return parse(data)


@dataclass
class Sent:
    """What a stream sent: per span its trace id (hex) and attributes."""

    spans: list[tuple[str, dict[str, Any]]]


def span_batch(frame: pd.DataFrame, first_trace: int) -> tuple[bytes, Sent]:
    """One single-row span per row of `frame`, trace ids first_trace, first_trace+1, …"""
    spans = []
    for row in frame.to_dict("records"):
        spans.append(
            {
                semconv.MODEL_NAME: MODEL,
                semconv.MODEL_VERSION: VERSION,
                F + "age": float(row["age"]),
                F + "tenure": float(row["tenure"]),
                F + "contract": str(row["contract"]),
                semconv.PREDICTION: float(row["age"]) / 100,
            }
        )
    sent = Sent([((first_trace + i).to_bytes(16, "big").hex(), s) for i, s in enumerate(spans)])
    return traces(spans, first_trace=first_trace), sent


def feed(gateway: Gateway, rows: int, drifted: bool, first_trace: int, seed: int) -> Sent:
    """Send `rows` spans in requests of 25 through the pipeline, then step the drift engine."""
    rng = np.random.default_rng(seed)
    sent = Sent([])
    for start in range(0, rows, 25):
        payload, batch = span_batch(inputs(rng, 25, drifted), first_trace + start)
        gateway.pipeline.consume_traces(payload, "grpc")
        sent.spans += batch.spans
    return sent


def sample_every_request() -> None:
    """Tests sample every request (in production at most every refresh_s per model)."""
    RequestSamples.refresh_s = 0.0
    Exemplars.refresh_s = 0.0


def send(
    http_url: str,
    rows: int,
    drifted: bool,
    first_trace: int,
    seed: int,
    headers: dict[str, str] | None = None,
) -> Sent:
    """`rows` single-row spans over OTLP/HTTP protobuf, in requests of 25."""
    import httpx

    rng = np.random.default_rng(seed)
    sent = Sent([])
    with httpx.Client(timeout=10) as client:
        for start in range(0, rows, 25):
            payload, batch = span_batch(inputs(rng, 25, drifted), first_trace + start)
            response = client.post(
                f"{http_url}/v1/traces",
                content=payload,
                headers={"Content-Type": "application/x-protobuf", **(headers or {})},
            )
            response.raise_for_status()
            sent.spans += batch.spans
    return sent


def stream_until_drift(
    http_url: str, admin_url: str, headers: dict[str, str] | None = None
) -> Sent:
    """Normal traffic for two windows, then drifted traffic until the API says age drifts."""
    import time

    import httpx

    sent = Sent([])
    for second in range(3):
        sent.spans += send(http_url, 200, False, 1 + second * 1000, second).spans
        time.sleep(1.0)
    deadline = time.monotonic() + 60
    second = 0
    while True:
        sent.spans += send(http_url, 200, True, 1_000_000 + second * 1000, 100 + second).spans
        second += 1
        time.sleep(1.0)
        answer = httpx.get(
            f"{admin_url}/api/v1/model",
            params={"name": MODEL, "version": VERSION},
            headers=headers or {},
            timeout=10,
        ).json()
        drifting = {s["name"] for s in answer["series"] if s["detected"]}
        # Past one full window of drifted traffic, every window holds only the new mix.
        if {"age", "contract"} <= drifting and second >= 5:
            return sent
        assert time.monotonic() < deadline, f"no drift after 60 s: {answer}"


@contextmanager
def streaming(http_url: str, sent: Sent, headers: dict[str, str] | None = None) -> Iterator[None]:
    """Keep sending drifted traffic (200 spans a second) while the body runs, so the window
    stays full however slowly a browser starts on a loaded machine."""
    import threading

    stop = threading.Event()

    def run() -> None:
        second = 0
        while not stop.is_set():
            batch = send(http_url, 200, True, 5_000_000 + second * 1000, 500 + second, headers)
            sent.spans += batch.spans
            second += 1
            stop.wait(1.0)

    thread = threading.Thread(target=run, name="drifting-stream", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
