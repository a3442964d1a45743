"""The demo's model service: FastAPI, instrumented in one call, served by uvicorn.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 uvicorn otelml.demo.service:app

The handlers know nothing of otelml: `instrument(app, ...)` records the request models'
fields as features and the response's `churn` as the prediction, on the request's span.
"""

from __future__ import annotations

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from fastapi import FastAPI
from pydantic import BaseModel

from otelml import instrument
from otelml.demo.model import MODEL, VERSION, predict
from otelml.instrument.fastapi import instrument as instrument_fastapi

telemetry = instrument.configure(service_name="churn-api")
app = FastAPI(title="churn model (otelml demo)")


class Customer(BaseModel):
    age: float
    tenure_months: float
    monthly_charges: float
    support_calls: float
    contract: str
    country: str


class Scored(BaseModel):
    churn: float


class Customers(BaseModel):
    customers: list[Customer]


class ScoredBatch(BaseModel):
    churn: list[float]


@app.post("/predict")
def score(customer: Customer) -> Scored:
    return Scored(churn=float(predict(pd.DataFrame([customer.model_dump()]))[0]))


@app.post("/predict_batch")
def score_batch(batch: Customers) -> ScoredBatch:
    frame = pd.DataFrame([c.model_dump() for c in batch.customers])
    return ScoredBatch(churn=predict(frame).tolist())


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


instrument_fastapi(app, model=MODEL, version=VERSION)
