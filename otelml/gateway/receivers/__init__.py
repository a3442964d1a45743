"""OTLP receivers: wire protocols in, `Consumer` calls out."""
