"""A diabetes-progression regressor served by BentoML 1.4 and observed by otelml.

Two APIs: `predict` takes one patient as named fields, `predict_batch` takes a list of
patients and is batchable, so BentoML merges concurrent requests into one model call.
`@record_api` puts each request's features and predicted progression on that request's span;
BentoML's own tracing (bentoml_configuration.yaml) exports the spans to the otelml gateway.
`predict` also logs through `bentoml.monitor`, whose OTLP log records the gateway reads as
model `diabetes_monitor`.

The model is fitted at start-up by train.py's `fit()` on scikit-learn's bundled diabetes data.
"""

from __future__ import annotations

import bentoml
import numpy as np
from pydantic import BaseModel
from train import FEATURES, MODEL, OUTPUT, VERSION, fit

from otelml.instrument.bentoml import record_api

#: bentoml.monitor's name: the gateway reads its records as the model of that name.
MONITOR = "diabetes_monitor"


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


@bentoml.service(name="diabetes_regressor")
class DiabetesRegressor:
    def __init__(self) -> None:
        self.model = fit()

    def _predict(self, patients: list[Patient]) -> list[float]:
        rows = np.asarray([[getattr(p, f) for f in FEATURES] for p in patients], dtype=float)
        return [round(float(v), 2) for v in self.model.predict(rows)]

    @record_api(model=MODEL, version=VERSION, output=OUTPUT)
    @bentoml.api
    def predict(
        self,
        age: float,
        sex: int,
        bmi: float,
        bp: float,
        s1: float,
        s2: float,
        s3: float,
        s4: float,
        s5: float,
        s6: float,
    ) -> float:
        values = dict(zip(FEATURES, (age, sex, bmi, bp, s1, s2, s3, s4, s5, s6), strict=True))
        (progression,) = self._predict([Patient(**values)])
        with bentoml.monitor(MONITOR) as monitor:
            for name, value in values.items():
                monitor.log(value, name, "feature", "categorical" if name == "sex" else "numerical")
            monitor.log(progression, OUTPUT, "prediction", "numerical")
        return progression

    @record_api(model=MODEL, version=VERSION, output=OUTPUT)
    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict_batch(self, patients: list[Patient]) -> list[float]:
        return self._predict(patients)
