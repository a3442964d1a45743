"""otelml: make machine-learning models in production observable with OpenTelemetry."""

__version__ = "0.1.0"
