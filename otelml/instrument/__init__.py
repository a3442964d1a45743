"""App-side instrumentation: traces, correlated logs and `ml.*` attributes for the gateway.

    from otelml import instrument
    instrument.configure(service_name="churn-api", endpoint="http://gateway:4317")
    ids = instrument.record(features=row, prediction=score, model="churn", version="3")
    instrument.record_ground_truth(ids[0], label)

Integrations: `otelml.instrument.fastapi.instrument(app, ...)` and
`otelml.instrument.bentoml` (imported on demand, so neither framework is a dependency).
The app side never imports the gateway: a model service pulls in the OpenTelemetry SDK and
exporters, nothing else.
"""

from otelml.instrument.logs import LOG_FORMAT
from otelml.instrument.recording import record, record_ground_truth
from otelml.instrument.setup import Telemetry, configure

__all__ = ["LOG_FORMAT", "Telemetry", "configure", "record", "record_ground_truth"]
