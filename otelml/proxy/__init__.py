"""`otelml proxy`: a reverse-proxy sidecar that turns the JSON of an un-instrumented model
server (TF Serving REST, any JSON API) into the same `ml.*` spans as `otelml.instrument`.

rules (rules.py) → paths (paths.py) → extraction (extract.py) → one SERVER span per request
(app.py, telemetry.py) → the gateway over OTLP; the proxy's own counters in metrics.py.
"""

from otelml.proxy.rules import Rules, load, parse
from otelml.proxy.server import BoundPorts, Proxy, ProxySettings, serve

__all__ = ["BoundPorts", "Proxy", "ProxySettings", "Rules", "load", "parse", "serve"]
