"""Real OpenTelemetry SDK exporters (gRPC and HTTP) → gateway → exact distributions on /metrics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelml import profile, semconv
from tests.conftest import loopback_config, running_gateway

FEATURE = semconv.FEATURE_PREFIX


def _training_frame(rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, 2000),
            "income": rng.lognormal(10, 0.5, 2000),
            "country": rng.choice(["DE", "FR", "US", "GB"], 2000, p=[0.4, 0.3, 0.2, 0.1]),
            "score": rng.uniform(0, 1, 2000),
        }
    )


def _tracer_provider(exporter: object) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "churn-svc"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=64))  # type: ignore[arg-type]
    return provider


def _cumulative(edges: np.ndarray, values: list[float]) -> list[int]:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=len(edges) + 1)
    return [int(c) for c in np.cumsum(counts)]


def _bucket_sample(
    samples: dict[Any, Any], metric: str, feature: str, le: str, label: str = "feature"
) -> Any:
    labels = {"model": "churn", "model_version": "3", label: feature, "le": le}
    return samples[(f"{metric}_bucket", frozenset(labels.items()))]


def test_sdk_grpc_and_http_exporters_produce_exact_distributions(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    reference = profile.build(
        _training_frame(rng), model="churn", version="3", predictions=["score"]
    )
    reference_path = tmp_path / "reference.json"
    profile.save(reference, reference_path)
    config = loopback_config(
        models=[{"name": "churn", "version": "3", "reference": str(reference_path)}]
    )

    sent_age: list[float] = []
    sent_income: list[float] = []
    sent_country: list[str] = []
    sent_score: list[float] = []
    income_missing = income_mismatch = income_infinite = 0
    trace_ids: set[str] = set()
    rows = 0

    with running_gateway(config) as gw:
        # gRPC: 240 scalar spans, with absent / NaN / string / infinite incomes.
        provider = _tracer_provider(GrpcSpanExporter(endpoint=gw.grpc_endpoint, insecure=True))
        tracer = provider.get_tracer("test")
        for i in range(240):
            age = float(rng.normal(45, 12))
            country = str(rng.choice(["DE", "FR", "US", "GB", "ZZ"], p=[0.3, 0.3, 0.2, 0.1, 0.1]))
            score = float(rng.uniform(0, 1))
            attributes: dict[str, object] = {
                semconv.MODEL_NAME: "churn",
                semconv.MODEL_VERSION: "3",
                FEATURE + "age": age,
                FEATURE + "country": country,
                semconv.PREDICTION: score,
            }
            if i % 10 == 0:
                income_missing += 1  # absent
            elif i % 25 == 1:
                attributes[FEATURE + "income"] = float("nan")
                income_missing += 1
            elif i % 40 == 2:
                attributes[FEATURE + "income"] = "n/a"
                income_mismatch += 1
            elif i % 60 == 3:
                attributes[FEATURE + "income"] = float("inf")
                income_infinite += 1
            else:
                income = float(rng.lognormal(10.2, 0.5)) if i % 3 else int(rng.integers(1, 90000))
                attributes[FEATURE + "income"] = income
                sent_income.append(float(income))
            with tracer.start_as_current_span("predict", attributes=attributes) as span:  # type: ignore[arg-type]
                trace_ids.add(format(span.get_span_context().trace_id, "032x"))
            sent_age.append(age)
            sent_country.append(country)
            sent_score.append(score)
            rows += 1
        assert provider.force_flush(10_000)
        provider.shutdown()

        # HTTP: 30 batch spans of 8 rows, features as arrays (one element per row).
        provider = _tracer_provider(HttpSpanExporter(endpoint=f"{gw.http_url}/v1/traces"))
        tracer = provider.get_tracer("test")
        for _ in range(30):
            ages = rng.normal(45, 12, 8).tolist()
            incomes = rng.lognormal(10.2, 0.5, 8).tolist()
            countries = rng.choice(["DE", "FR", "US"], 8).tolist()
            scores = rng.uniform(0, 1, 8).tolist()
            attributes = {
                semconv.MODEL_NAME: "churn",
                semconv.MODEL_VERSION: "3",
                FEATURE + "age": ages,
                FEATURE + "income": incomes,
                FEATURE + "country": countries,
                semconv.PREDICTION: scores,
            }
            with tracer.start_as_current_span("predict_batch", attributes=attributes) as span:  # type: ignore[arg-type]
                trace_ids.add(format(span.get_span_context().trace_id, "032x"))
            sent_age += ages
            sent_income += incomes
            sent_country += countries
            sent_score += scores
            rows += 8
        assert provider.force_flush(10_000)
        provider.shutdown()

        samples = gw.samples()

    features = reference.features
    for name, values, missing in (
        ("age", sent_age, 0),
        ("income", sent_income, income_missing),
    ):
        edges = np.asarray(features[name].edges)  # type: ignore[union-attr]
        expected = _cumulative(edges, values)
        les = [*(str(float(e)) for e in edges), "+Inf"]
        got = []
        for i, le in enumerate(les):
            key = next(
                k
                for k in samples
                if k[0] == "otelml_feature_value_bucket"
                and ("feature", name) in k[1]
                and float(dict(k[1])["le"]) == (float(edges[i]) if le != "+Inf" else math.inf)
            )
            got.append(int(samples[key].value))
            exemplar = samples[key].exemplar
            bucket_count = expected[i] - (expected[i - 1] if i else 0)
            if bucket_count:
                # The exemplar is a real trace the test sent, whose value lies in this bucket.
                assert exemplar is not None
                assert exemplar.labels["trace_id"] in trace_ids
                assert len(exemplar.labels["span_id"]) == 16
                low = -math.inf if i == 0 else edges[i - 1]
                high = math.inf if le == "+Inf" else edges[i]
                assert low < exemplar.value <= high
            else:
                assert exemplar is None
        assert got == expected, name
        missing_key = (
            "otelml_feature_missing_total",
            frozenset({"model": "churn", "model_version": "3", "feature": name}.items()),
        )
        assert samples[missing_key].value == missing

    def invalid(feature: str, reason: str) -> float:
        labels = {"model": "churn", "model_version": "3", "feature": feature, "reason": reason}
        return float(samples[("otelml_feature_invalid_total", frozenset(labels.items()))].value)

    assert invalid("income", "type_mismatch") == income_mismatch
    assert invalid("income", "not_finite") == income_infinite
    income_edges = features["income"]
    assert isinstance(income_edges, profile.NumericProfile)
    assert invalid("income", "out_of_range") == len(
        [v for v in sent_income if v < income_edges.min or v > income_edges.max]
    )

    # Categorical: reference top-K categories counted exactly; "ZZ" is unknown → __other__.
    country_profile = features["country"]
    assert isinstance(country_profile, profile.CategoricalProfile)
    for category in [*country_profile.categories, semconv.OTHER_CATEGORY]:
        labels = {
            "model": "churn",
            "model_version": "3",
            "feature": "country",
            "category": category,
        }
        expected_count = (
            len([c for c in sent_country if c not in country_profile.categories])
            if category == semconv.OTHER_CATEGORY
            else sent_country.count(category)
        )
        assert samples[("otelml_feature_category_total", frozenset(labels.items()))].value == (
            expected_count
        )
    assert invalid("country", "unknown_category") == sent_country.count("ZZ")

    # Predictions: the bare ml.prediction is output "prediction"; no profile for it → default
    # buckets; the +Inf bucket carries every row.
    labels = {"model": "churn", "model_version": "3", "output": "prediction", "le": "+Inf"}
    assert samples[("otelml_prediction_value_bucket", frozenset(labels.items()))].value == rows

    # Receiver self-metrics and spanmetrics count every span.
    accepted = {
        t: samples[("otelml_receiver_accepted_spans_total", frozenset({"transport": t}.items()))]
        for t in ("grpc", "http")
    }
    assert accepted["grpc"].value == 240
    assert accepted["http"].value == 30
    calls = {
        dict(k[1])["span_name"]: v.value
        for k, v in samples.items()
        if k[0] == "traces_spanmetrics_calls_total"
    }
    assert calls == {"predict": 240, "predict_batch": 30}


def test_log_records_carry_features_like_spans() -> None:
    with running_gateway() as gw:
        provider = LoggerProvider(resource=Resource.create({"service.name": "churn-svc"}))
        provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=gw.grpc_endpoint, insecure=True))
        )
        logger = provider.get_logger("test.features")
        values = [0.5, 3.0, 3.0, 7.5, -2.0]
        for value in values:
            logger.emit(
                body="inference",
                severity_number=SeverityNumber.INFO,
                attributes={
                    semconv.MODEL_NAME: "fraud",
                    semconv.MODEL_VERSION: "1",
                    FEATURE + "amount": value,
                    FEATURE + "channel": "web",
                },
            )
        provider.shutdown()
        samples = gw.samples()
    labels = {"model": "fraud", "model_version": "1", "feature": "amount"}
    buckets = {
        dict(k[1])["le"]: v.value
        for k, v in samples.items()
        if k[0] == "otelml_feature_value_bucket" and frozenset(labels.items()) <= k[1]
    }
    # Default scheme: 0.5 ≤ 0.5, 3.0 ≤ 5.0 (twice), 7.5 ≤ 10.0, -2.0 ≤ -1.0: cumulative counts.
    assert buckets["-2.5"] == 0
    assert buckets["-1.0"] == 1
    assert buckets["0.5"] == 2
    assert buckets["2.5"] == 2
    assert buckets["5.0"] == 4
    assert buckets["10.0"] == 5
    assert buckets["+Inf"] == 5
    channel = {"model": "fraud", "model_version": "1", "feature": "channel", "category": "web"}
    assert samples[("otelml_feature_category_total", frozenset(channel.items()))].value == 5
    accepted = (
        "otelml_receiver_accepted_log_records_total",
        frozenset({"transport": "grpc"}.items()),
    )
    assert samples[accepted].value == 5


def test_grpc_gzip_compression_is_accepted() -> None:
    from grpc import Compression

    with running_gateway() as gw:
        exporter = GrpcSpanExporter(
            endpoint=gw.grpc_endpoint, insecure=True, compression=Compression.Gzip
        )
        provider = _tracer_provider(exporter)
        tracer = provider.get_tracer("test")
        for value in (1.0, 2.0, 3.0):
            with tracer.start_as_current_span(
                "predict", attributes={semconv.MODEL_NAME: "gz", FEATURE + "x": value}
            ):
                pass
        provider.shutdown()
        samples = gw.samples()
    labels = {"model": "gz", "model_version": "", "feature": "x", "le": "+Inf"}
    assert samples[("otelml_feature_value_bucket", frozenset(labels.items()))].value == 3


@pytest.mark.parametrize("openmetrics", [True, False])
def test_exposition_parses_strictly(openmetrics: bool) -> None:
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    with running_gateway() as gw:
        provider = _tracer_provider(GrpcSpanExporter(endpoint=gw.grpc_endpoint, insecure=True))
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span(
            "predict", attributes={semconv.MODEL_NAME: "m", FEATURE + "x": 1.5}
        ):
            pass
        provider.shutdown()
        text = gw.scrape(openmetrics=openmetrics)
    if openmetrics:
        assert text.endswith("# EOF\n")
        assert ' # {trace_id="' in text
    else:
        assert "# EOF" not in text
        assert "trace_id" not in text
        names = {f.name for f in parse_text(text)}
        assert "otelml_feature_value" in names
