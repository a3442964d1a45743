"""OTLP receivers: wire protocols in, `Pipeline` calls out."""
