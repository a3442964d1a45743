"""OTLP protobuf → columnar records (numpy + Arrow), without one Python object per attribute."""

from otelml.gateway.decode.records import Records, decode_logs, decode_traces

__all__ = ["Records", "decode_logs", "decode_traces"]
