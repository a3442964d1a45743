"""An iris classifier served by BentoML 1.4 and observed by otelml.

Two APIs: `classify` takes one flower as named fields (a missing `petal_width` is allowed: the
model handles missing values), `classify_batch` takes rows of the four measurements and is
batchable, so BentoML merges concurrent requests into one model call. `@record_api` puts each
request's features and predicted species on that request's span; BentoML's own tracing
(bentoml_configuration.yaml) exports the spans to the otelml gateway. `classify` also logs
through `bentoml.monitor`, whose OTLP log records the gateway reads as model `iris_monitor`.

The model is trained at import on the iris data set that ships with scikit-learn.
"""

from __future__ import annotations

import bentoml
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier

from otelml.instrument.bentoml import record_api

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MODEL, VERSION = "iris", "1"
#: bentoml.monitor's name: the gateway reads its records as the model of that name.
MONITOR = "iris_monitor"


def train() -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    iris = load_iris()
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0)
    return model.fit(iris.data, iris.target), np.asarray(iris.target_names)


@bentoml.service(name="iris_classifier")
class IrisClassifier:
    def __init__(self) -> None:
        self.model, self.species = train()

    @record_api(model=MODEL, version=VERSION, output="species")
    @bentoml.api
    def classify(
        self,
        sepal_length: float,
        sepal_width: float,
        petal_length: float,
        petal_width: float | None = None,
    ) -> str:
        row = [
            sepal_length,
            sepal_width,
            petal_length,
            np.nan if petal_width is None else petal_width,
        ]
        species = str(self.species[self.model.predict(np.asarray([row]))[0]])
        with bentoml.monitor(MONITOR) as monitor:
            for name, value in zip(FEATURES, row, strict=True):
                monitor.log(value, name, "feature", "numerical")
            monitor.log(species, "species", "prediction", "categorical")
        return species

    @record_api(model=MODEL, version=VERSION, feature_names=FEATURES, output="species")
    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def classify_batch(self, rows: np.ndarray) -> list[str]:
        return self.species[self.model.predict(rows)].tolist()  # type: ignore[no-any-return]
