"""The error tree, in one place.

OtelmlError
├── ConfigError      the configuration is wrong; raised at start, before any port is bound
├── MissingExtra     a command's dependencies are not installed (they come with an extra)
├── Refused          transient: the client should retry after `retry_after` seconds
│                    (gRPC UNAVAILABLE + RetryInfo, HTTP 429/503 + Retry-After)
└── Permanent        the data itself is bad: retrying cannot help (gRPC INVALID_ARGUMENT,
                     HTTP 400/413/415); the payload is dropped and counted with `reason`
"""

from __future__ import annotations


class OtelmlError(Exception):
    """Base of every error otelml raises on purpose."""


class ConfigError(OtelmlError):
    """One or more configuration errors, each naming its YAML path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class MissingExtra(OtelmlError):
    """A command needs a module that only one of otelml's extras installs."""

    def __init__(self, extra: str, module: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"{module} is not installed; it comes with otelml[{extra}]: "
            f"pip install 'otelml[{extra}]'"
        )


class Refused(OtelmlError):
    """Load is shed; the same request may succeed after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Permanent(OtelmlError):
    """The request can never succeed as sent; `reason` labels the drop counter."""

    def __init__(self, message: str, reason: str, http_status: int = 400) -> None:
        self.reason = reason
        self.http_status = http_status
        super().__init__(message)
