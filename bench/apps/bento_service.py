"""The BentoML example's `classify` API (an iris classifier, one flower per request) for the
app-side benchmark: `@record_api` applied or not as BENCH_MODE says (`otelml`: applied), and
without the example's `bentoml.monitor` logging, so that the difference is `record_api` alone.
Tracing is BentoML's own, configured by the bench (BENTOML_CONFIG)."""

from __future__ import annotations

import os
from typing import Any

import bentoml
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier

from otelml.instrument.bentoml import record_api

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
RECORD = os.environ.get("BENCH_MODE") == "otelml"


def _maybe_record(function: Any) -> Any:
    return record_api(model="iris", version="1", output="species")(function) if RECORD else function


@bentoml.service(name="iris_bench")
class IrisBench:
    def __init__(self) -> None:
        iris = load_iris()
        model = HistGradientBoostingClassifier(max_iter=50, random_state=0)
        self.model = model.fit(iris.data, iris.target)
        self.species = np.asarray(iris.target_names)

    @_maybe_record
    @bentoml.api
    def classify(
        self, sepal_length: float, sepal_width: float, petal_length: float, petal_width: float
    ) -> str:
        row = np.asarray([[sepal_length, sepal_width, petal_length, petal_width]])
        return str(self.species[self.model.predict(row)[0]])
