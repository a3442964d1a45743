"""Leaf kinds: which OTLP AnyValue member a decoded attribute value arrived as.

The C scanner (`_otlpscan.c`) and its Python twin write these codes into `Leaves.kind`;
connectors and distributions read them.
"""

KIND_NULL = 0  # attribute present without a value
KIND_DOUBLE = 1
KIND_INT = 2
KIND_BOOL = 3
KIND_STRING = 4
KIND_OTHER = 5  # bytes, key-value lists, nested arrays: never a valid feature value
