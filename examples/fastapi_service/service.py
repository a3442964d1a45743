"""The FastAPI model service of `model_api.py`, instrumented in two lines.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 \
        uvicorn examples.fastapi_service.service:app --port 8000

Traces, logs (with trace ids) and every request's features and predicted progression go to
the otelml gateway; the handlers know nothing of otelml. Standard OTEL_* variables configure
the export.
"""

from __future__ import annotations

from examples.fastapi_service.model_api import app
from examples.fastapi_service.train import MODEL, VERSION
from otelml import instrument
from otelml.instrument.fastapi import instrument as instrument_fastapi

telemetry = instrument.configure(service_name="diabetes-api")
instrument_fastapi(app, model=MODEL, version=VERSION)

__all__ = ["app", "telemetry"]
