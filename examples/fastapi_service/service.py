"""A FastAPI model service (scikit-learn on iris) instrumented in one call.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 \
        uvicorn examples.fastapi_service.service:app --port 8000

Traces, logs (with trace ids) and the marked features/predictions go to the otelml gateway;
the handlers know nothing of otelml. Standard OTEL_* variables configure the export.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from otelml import instrument
from otelml.instrument.fastapi import Feature, Prediction
from otelml.instrument.fastapi import instrument as instrument_fastapi

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

iris = load_iris(as_frame=True)
frame = iris.frame.rename(columns=dict(zip(iris.feature_names, FEATURES, strict=True)))
model = LogisticRegression(max_iter=500).fit(frame[FEATURES].to_numpy(), frame["target"])
SPECIES = [str(name) for name in iris.target_names]

telemetry = instrument.configure(service_name="iris-api")
log = logging.getLogger("iris")
log.setLevel(logging.INFO)
app = FastAPI()


class Flower(BaseModel):
    sepal_length: Annotated[float, Feature()]
    sepal_width: Annotated[float, Feature()]
    petal_length: Annotated[float, Feature()]
    petal_width: Annotated[float | None, Feature()] = None
    request_tag: str = ""  # unmarked: not a feature


class Scored(BaseModel):
    species: Annotated[str, Prediction()]
    probability: Annotated[float, Prediction()]
    note: str = ""


class Batch(BaseModel):
    instances: list[Flower]
    channel: Annotated[str, Feature()] = "web"  # applies to every row


class BatchScored(BaseModel):
    species: list[str]


def _predict(rows: list[Flower]) -> tuple[list[str], list[float]]:
    values = [[r.sepal_length, r.sepal_width, r.petal_length, r.petal_width or 0.0] for r in rows]
    probabilities = model.predict_proba(values)
    best = probabilities.argmax(axis=1)
    return [SPECIES[i] for i in best], probabilities.max(axis=1).tolist()


@app.post("/predict")
def predict(flower: Flower) -> Scored:
    species, probability = _predict([flower])
    log.info("predicted %s", species[0])
    return Scored(species=species[0], probability=probability[0])


@app.post("/predict_batch")
async def predict_batch(batch: Batch) -> BatchScored:
    species, _ = _predict(batch.instances)
    log.info("predicted a batch of %d", len(species))
    return BatchScored(species=species)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


instrument_fastapi(app, model="iris", version="1")
