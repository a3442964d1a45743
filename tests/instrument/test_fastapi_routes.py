"""What `instrument(app)` reads from routes, checked on the spans an in-memory exporter keeps."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from otelml import semconv
from otelml.instrument import fastapi as otelml_fastapi
from otelml.instrument.fastapi import Feature, Prediction, instrument

F = semconv.FEATURE_PREFIX


class Marked(BaseModel):
    age: Annotated[float, Feature()]
    plan: Annotated[str, Feature("subscription")]
    request_id: str = ""


class Plain(BaseModel):
    age: float
    plan: str


class Out(BaseModel):
    score: Annotated[float, Prediction()]
    label: Annotated[str, Prediction("class")]
    debug: str = ""


class Rows(BaseModel):
    instances: list[Plain]
    channel: str = "web"


class Scores(BaseModel):
    scores: list[float]


class Client:
    """Requests straight into the ASGI app (no server): what the route wrapper sees."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)


def _app(**options: Any) -> tuple[Client, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI()

    @app.post("/marked")
    def marked(body: Marked) -> Out:
        return Out(score=0.25, label="churn", debug="x")

    @app.post("/plain")
    async def plain(body: Plain) -> dict[str, float]:
        return {"score": body.age / 100}

    @app.post("/rows")
    def rows(body: Rows) -> Scores:
        return Scores(scores=[0.1 * i for i in range(len(body.instances))])

    @app.post("/raw")
    def raw(body: Plain) -> JSONResponse:
        return JSONResponse({"score": 1.0})

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"ok": "yes"}

    instrument(app, model="churn", version=3, tracer_provider=provider, **options)
    return Client(app), exporter


def _server_span(exporter: InMemorySpanExporter) -> dict[str, Any]:
    (span,) = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    exporter.clear()
    return dict(span.attributes or {})


def test_marked_fields_only_with_their_names() -> None:
    client, exporter = _app()
    response = client.post("/marked", json={"age": 41, "plan": "pro", "request_id": "r1"})
    assert response.json() == {"score": 0.25, "label": "churn", "debug": "x"}
    attributes = _server_span(exporter)
    ml = {k: v for k, v in attributes.items() if k.startswith("ml.")}
    assert ml == {
        semconv.MODEL_NAME: "churn",
        semconv.MODEL_VERSION: "3",
        F + "age": 41.0,
        F + "subscription": "pro",
        semconv.PREDICTION_PREFIX + "score": 0.25,
        semconv.PREDICTION_PREFIX + "class": "churn",
    }


def test_unmarked_models_give_every_field_and_dict_results_are_outputs() -> None:
    client, exporter = _app()
    client.post("/plain", json={"age": 50, "plan": "free"})
    attributes = _server_span(exporter)
    assert attributes[F + "age"] == 50.0 and attributes[F + "plan"] == "free"
    assert attributes[semconv.PREDICTION_PREFIX + "score"] == 0.5


def test_rows_become_arrays_and_scalars_apply_to_every_row() -> None:
    client, exporter = _app()
    instances = [{"age": 30, "plan": "a"}, {"age": 40, "plan": "b"}, {"age": 50, "plan": "c"}]
    client.post("/rows", json={"instances": instances, "channel": "app"})
    attributes = _server_span(exporter)
    assert attributes[F + "age"] == (30.0, 40.0, 50.0)
    assert attributes[F + "plan"] == ("a", "b", "c")
    assert attributes[F + "channel"] == "app"
    assert attributes[semconv.PREDICTION_PREFIX + "scores"] == pytest.approx((0.0, 0.1, 0.2))


def test_names_given_to_instrument_override_the_models() -> None:
    client, exporter = _app(features=["age"], predictions=["score"])
    client.post("/marked", json={"age": 41, "plan": "pro"})
    attributes = _server_span(exporter)
    assert F + "age" in attributes and F + "subscription" not in attributes
    assert semconv.PREDICTION_PREFIX + "score" in attributes
    assert semconv.PREDICTION_PREFIX + "class" not in attributes


def test_routes_without_a_model_body_are_traced_not_recorded() -> None:
    client, exporter = _app()
    assert client.get("/health").json() == {"ok": "yes"}
    attributes = _server_span(exporter)
    assert not any(k.startswith("ml.") for k in attributes)


def test_a_raw_response_records_features_only_and_bad_input_never_breaks() -> None:
    client, exporter = _app()
    client.post("/raw", json={"age": 1, "plan": "x"})
    attributes = _server_span(exporter)
    assert attributes[F + "age"] == 1.0
    assert not any(k.startswith(semconv.PREDICTION) for k in attributes)
    assert otelml_fastapi.stats()["unreadable_response"] >= 1
    # Invalid bodies are FastAPI's 422 before the handler runs: nothing recorded.
    before = otelml_fastapi.stats().get("recorded", 0)
    assert client.post("/plain", content=b"not json").status_code == 422
    assert client.post("/plain", json={"age": "old"}).status_code == 422
    assert otelml_fastapi.stats().get("recorded", 0) == before


def test_a_recording_failure_is_counted_and_the_response_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, _ = _app()

    def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise ValueError("rows disagree")

    monkeypatch.setattr(otelml_fastapi, "record", broken)
    before = otelml_fastapi.stats().get("failed:ValueError", 0)
    # a batch: recorded by record() (one-row requests take a path of their own, below)
    response = client.post("/rows", json={"instances": [{"age": 41, "plan": "pro"}]})
    assert response.status_code == 200 and response.json()["scores"] == [0.0]
    assert otelml_fastapi.stats()["failed:ValueError"] == before + 1


def test_the_one_row_fast_path_writes_what_record_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"age": 41, "plan": "pro", "request_id": "r1"}
    client, exporter = _app()
    client.post("/marked", json=body)
    fast = list(_server_span(exporter).items())
    assert otelml_fastapi._stats["recorded"] > 0
    monkeypatch.setattr(otelml_fastapi, "_record_row", lambda *args: False)
    client, exporter = _app()
    client.post("/marked", json=body)
    assert list(_server_span(exporter).items()) == fast  # same keys, values and order
