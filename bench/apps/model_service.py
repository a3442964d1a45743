"""The FastAPI model service of the app-side benchmark, in these set-ups (BENCH_MODE):
`bare` (no telemetry), `otel` (opentelemetry-instrumentation-fastapi, its defaults),
`otel-lean` (the same without the ASGI send/receive child spans, as otelml sets it up),
`otelml` (otelml.instrument.fastapi recording 20 features and 2 outputs) and, to take that
apart, `provider-only` (otelml's tracer provider with FastAPI's own request tracing off, no
middleware) and `otelml-spans` (the server spans, no features). Telemetry goes to
OTEL_EXPORTER_OTLP_ENDPOINT (a blackhole OTLP server in the bench). BENCH_MODEL picks the
model."""

from __future__ import annotations

import os

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, create_model
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

FEATURES = [f"f{i}" for i in range(20)]
rng = np.random.default_rng(0)
_x = rng.normal(size=(2000, 20))
_y = (_x[:, 0] + _x[:, 1] > 0).astype(int)
# "linear": a model that costs next to nothing, so telemetry costs show in full; "gbdt": a
# gradient-boosted model of 100 trees, closer to what model services serve.
if os.environ.get("BENCH_MODEL", "linear") == "gbdt":
    model = HistGradientBoostingClassifier(max_iter=100).fit(_x, _y)
else:
    model = LogisticRegression(max_iter=300).fit(_x, _y)

Row = create_model("Row", **{name: (float, ...) for name in FEATURES})  # type: ignore[call-overload]


class Scored(BaseModel):
    label: int
    probability: float


app = FastAPI()


@app.post("/predict")
def predict(row: Row) -> Scored:  # type: ignore[valid-type]
    values = np.fromiter((getattr(row, name) for name in FEATURES), float, 20).reshape(1, -1)
    probability = float(model.predict_proba(values)[0, 1])
    return Scored(label=int(probability > 0.5), probability=probability)


mode = os.environ.get("BENCH_MODE", "bare")
if mode in ("otel", "otel-lean"):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if mode == "otel-lean":  # as otelml sets it up: no ASGI send/receive child spans
        FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
    else:
        FastAPIInstrumentor.instrument_app(app)
elif mode in ("otelml", "otelml-spans", "provider-only"):
    from otelml import instrument
    from otelml.instrument.fastapi import instrument as instrument_fastapi

    instrument.configure(service_name="bench-model", logs=False)
    if mode == "provider-only":  # a tracer provider, FastAPI's own request tracing off
        telemetry = getattr(app, "_telemetry", None)
        if isinstance(telemetry, dict):
            telemetry["tracing"] = False
    else:  # otelml-spans: the server spans without recording any feature
        instrument_fastapi(
            app, model="bench", version="1", paths=[] if mode == "otelml-spans" else None
        )
