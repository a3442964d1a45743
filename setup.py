"""Build the one C extension (the OTLP wire scanner); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "otelml.gateway.decode._otlpscan",
            sources=["otelml/gateway/decode/_otlpscan.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,  # without a compiler, the pure-Python scanner is used (slower)
        )
    ]
)
