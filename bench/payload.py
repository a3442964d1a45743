"""The benchmark payload: one OTLP request, 512 spans × 20 features (15 numeric, 5 categorical)."""

from __future__ import annotations

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelml import semconv

SPANS = 512
NUMERIC = 15
CATEGORICAL = 5


def make_request(seed: int = 0, spans: int = SPANS) -> bytes:
    rng = np.random.default_rng(seed)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "bench-model"
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench"
    numbers = rng.normal(0, 3, (spans, NUMERIC))
    categories = rng.integers(0, 8, (spans, CATEGORICAL))
    for i in range(spans):
        span = scope.spans.add(
            trace_id=rng.bytes(16),
            span_id=rng.bytes(8),
            name="predict",
            kind=2,
            start_time_unix_nano=1_700_000_000_000_000_000 + i * 1000,
            end_time_unix_nano=1_700_000_000_000_000_000 + i * 1000 + int(rng.integers(1, 5e7)),
        )
        span.attributes.add(key=semconv.MODEL_NAME).value.string_value = "bench"
        span.attributes.add(key=semconv.MODEL_VERSION).value.string_value = "1"
        for f in range(NUMERIC):
            key = f"{semconv.FEATURE_PREFIX}num_{f:02d}"
            span.attributes.add(key=key).value.double_value = float(numbers[i, f])
        for f in range(CATEGORICAL):
            key = f"{semconv.FEATURE_PREFIX}cat_{f}"
            span.attributes.add(key=key).value.string_value = f"value-{categories[i, f]}"
    return request.SerializeToString()
