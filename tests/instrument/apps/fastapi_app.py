"""The FastAPI example service, plus a route declared after `instrument()` was called.

Serve with `uvicorn tests.instrument.apps.fastapi_app:app`.
"""

from __future__ import annotations

from examples.fastapi_service.service import Flower, Scored, app

__all__ = ["app"]


@app.post("/late")  # declared after instrument(): picked up at its first request
def late(flower: Flower) -> Scored:
    return Scored(species="late", probability=1.0)
