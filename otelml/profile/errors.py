"""The one exception type of the profile package."""

from __future__ import annotations

from otelml.errors import OtelmlError


class ProfileError(OtelmlError, ValueError):
    """A reference profile cannot be built, read or trusted.

    Part of the project's error tree (``OtelmlError``) and a ``ValueError``, so callers
    validating user input can catch it either way; the message always names the offending
    column or JSON path, because the person reading it has to fix a data file or a profile,
    not the code.
    """
