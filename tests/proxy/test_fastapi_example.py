"""examples/proxy/fastapi-rules.yaml in front of a real (un-instrumented) FastAPI model
service, as that example describes it: single and batch predictions, ids, slices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from otelml.proxy import load
from tests.conftest import running_gateway
from tests.proxy.harness import running_proxy
from tests.proxy.standin import score, serve_in_thread

RULES = Path(__file__).resolve().parents[2] / "examples" / "proxy" / "fastapi-rules.yaml"


class Row(BaseModel):
    age: float
    income: float
    country: str
    request_id: str | None = None


class Batch(BaseModel):
    rows: list[Row]


def _service() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    def predict(row: Row) -> dict[str, object]:
        value = score(row.age, row.income, row.country)
        label = "churn" if value > 0.5 else "stay"
        return {"score": value, "label": label, "request_id": row.request_id}

    @app.post("/predict/batch")
    def predict_batch(batch: Batch) -> dict[str, object]:
        scores = [score(r.age, r.income, r.country) for r in batch.rows]
        return {"scores": scores, "labels": ["churn" if s > 0.5 else "stay" for s in scores]}

    return app


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    with serve_in_thread(_service()) as url:
        yield url


def test_fastapi_example_rules(service: str) -> None:
    rules = load(RULES).model_dump(mode="json")
    singles = [(30, 40000.0, "DE"), (60, 90000.0, "FR"), (45, 10000.0, "DE")]
    batch = [(25, 20000.0, "US"), (70, 50000.0, "DE")]
    with (
        running_gateway() as gateway,
        running_proxy(service, rules, gateway=gateway.grpc_endpoint) as proxy,
        httpx.Client(timeout=30) as client,
    ):
        for i, (age, income, country) in enumerate(singles):
            body = {"age": age, "income": income, "country": country, "request_id": f"r-{i}"}
            direct = client.post(service + "/predict", json=body)
            via = client.post(proxy.url + "/predict", json=body)
            assert (via.status_code, via.content) == (direct.status_code, direct.content)
        rows = [{"age": a, "income": i, "country": c} for a, i, c in batch]
        response = client.post(
            proxy.url + "/predict/batch", json={"rows": rows}, headers={"X-Tenant": "acme"}
        )
        assert response.status_code == 200
        refused = client.post(proxy.url + "/predict", json={"age": "old"})
        assert refused.status_code == 422  # FastAPI's validation error, passed through
        proxy.flush()
        samples = gateway.samples()
        failures = proxy.failures("/predict")

    def value(name: str, **labels: str) -> float:
        key = (name, frozenset({"model": "churn", "model_version": "3", **labels}.items()))
        return float(samples[key].value)

    ages = [a for a, _, _ in singles + batch]
    assert value("otelml_feature_value_bucket", feature="age", le="+Inf") == len(ages)
    assert value("otelml_feature_category_total", feature="country", category="DE") == 3
    assert value("otelml_feature_category_total", feature="tenant", category="acme") == 2
    labels = ["churn" if score(*r) > 0.5 else "stay" for r in singles + batch]
    for label in ("churn", "stay"):
        assert value("otelml_prediction_class_total", output="label", **{"class": label}) == (
            labels.count(label)
        )
    assert value("otelml_prediction_value_bucket", output="score", le="+Inf") == 5
    # request_id is the prediction id, not a feature; the 422 is not extracted.
    assert not [k for k in samples if ("feature", "request_id") in k[1]]
    assert failures == {}
