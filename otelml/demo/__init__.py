"""`otelml demo`: the gateway, a FastAPI model service and its traffic, on this machine.

- `model`: the demo's churn model and its synthetic customers (normal and drifted);
- `service`: the FastAPI service, instrumented with `otelml.instrument`, run by uvicorn;
- `traffic`: real HTTP requests to it, a normal then a drift phase, ground truth later;
- `runner`: starts everything, shows progress and the summary, serves the UI until Ctrl-C.
"""

from otelml.demo.runner import Ports, run

__all__ = ["Ports", "run"]
