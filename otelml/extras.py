"""Which extra a command's imports come from: a missing one is named, in one line.

`pip install otelml` is the app side only (the OpenTelemetry SDK and OTLP exporters), so the
commands that run the gateway, build profiles or start the proxy import their dependencies
when they run, inside `needs(extra)`: a module that is not installed then becomes a
`MissingExtra` that says what to install, instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from otelml.errors import MissingExtra


@contextmanager
def needs(extra: str) -> Iterator[None]:
    """Turn an uninstalled third-party module imported in this block into `MissingExtra`."""
    try:
        yield
    except ModuleNotFoundError as error:
        module = (error.name or "").partition(".")[0]
        if module in ("", "otelml"):
            raise  # a missing module of otelml itself is a bug, not a missing extra
        raise MissingExtra(extra, module) from error
