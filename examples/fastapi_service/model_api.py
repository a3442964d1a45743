"""The model service as its authors wrote it: FastAPI + scikit-learn, no telemetry.

`service.py` makes this very app observable in two lines; the benchmark serves both to
measure what that costs. Every field of the request model is a feature and every field of the
response model an output, so no field needs marking.
"""

from __future__ import annotations

import logging

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from examples.fastapi_service.train import FEATURES, fit

model = fit()
log = logging.getLogger("diabetes")
log.setLevel(logging.INFO)
app = FastAPI()


class Patient(BaseModel):
    age: float
    sex: int  # 1 or 2, as the data set codes it: a categorical feature
    bmi: float
    bp: float
    s1: float
    s2: float
    s3: float
    s4: float
    s5: float
    s6: float


class Scored(BaseModel):
    progression: float


class Batch(BaseModel):
    patients: list[Patient]


class BatchScored(BaseModel):
    progression: list[float]


def _predict(patients: list[Patient]) -> list[float]:
    rows = np.asarray([[getattr(p, f) for f in FEATURES] for p in patients], dtype=float)
    return [round(float(v), 2) for v in model.predict(rows)]


@app.post("/predict")
def predict(patient: Patient) -> Scored:
    (progression,) = _predict([patient])
    log.info("predicted %.1f", progression)
    return Scored(progression=progression)


@app.post("/predict_batch")
def predict_batch(batch: Batch) -> BatchScored:
    progression = _predict(batch.patients)
    log.info("predicted a batch of %d", len(progression))
    return BatchScored(progression=progression)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
