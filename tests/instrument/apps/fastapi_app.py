"""The FastAPI example service, plus a route declared after `instrument()` was called.

Serve with `uvicorn tests.instrument.apps.fastapi_app:app`.
"""

from __future__ import annotations

from examples.fastapi_service.model_api import Patient, Scored
from examples.fastapi_service.service import app

__all__ = ["app"]


@app.post("/late")  # declared after instrument(): picked up at its first request
def late(patient: Patient) -> Scored:
    return Scored(progression=-1.0)
