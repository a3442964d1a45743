"""OTLP protobuf → columnar records (numpy), without one Python object per attribute."""

from otelml.gateway.decode.records import NATIVE, Leaves, Records, decode_logs, decode_traces

__all__ = ["NATIVE", "Leaves", "Records", "decode_logs", "decode_traces"]
