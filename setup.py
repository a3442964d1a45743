"""Build the C extensions (the gateway's OTLP wire scanner; the app side's OTLP span encoder
and lean-span attribute checks); everything else is in pyproject.toml. All are optional:
without a compiler, the pure-Python scanner, the SDK's own encoder and Python checks are used
(slower, same output)."""

from setuptools import Extension, setup

_FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(
            "otelml.gateway.decode._otlpscan",
            sources=["otelml/gateway/decode/_otlpscan.c"],
            extra_compile_args=_FLAGS,
            optional=True,
        ),
        Extension(
            "otelml.instrument._otlpencode",
            sources=["otelml/instrument/_otlpencode.c"],
            extra_compile_args=_FLAGS,
            optional=True,
        ),
        Extension(
            "otelml.instrument._leanattrs",
            sources=["otelml/instrument/_leanattrs.c"],
            extra_compile_args=_FLAGS,
            optional=True,
        ),
    ]
)
