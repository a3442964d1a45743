"""`otelml proxy`: a reverse-proxy sidecar that turns the JSON of an un-instrumented model
server (TF Serving REST, any JSON API) into the same `ml.*` spans as `otelml.instrument`.

rules (rules.py, paths.py) → the ASGI proxy (app.py) and its upstream client (upstream.py) →
extraction after the answer (extract.py) → one SERVER span per request (telemetry.py: SDK,
batch processor, OTLP) → the gateway; the proxy's own counters (metrics.py) and its servers
(server.py; coalesce.py: each answer in one write to the client).
"""

from otelml.proxy.rules import Rules, load, parse
from otelml.proxy.server import BoundPorts, Proxy, ProxySettings, serve

__all__ = ["BoundPorts", "Proxy", "ProxySettings", "Rules", "load", "parse", "serve"]
