"""How a categorical value becomes the label stored in the profile.

The gateway receives categories as OpenTelemetry attribute values and must map them to
the same strings, so the rule lives in one function both sides can use.
"""

from __future__ import annotations

import math

import numpy as np


def category_label(value: object) -> str:
    """Label of one non-missing categorical value.

    Booleans become ``"true"``/``"false"`` (as OpenTelemetry stringifies bool attributes),
    integers ``str(int)`` (``"3"``), and integral floats the same as the integer
    (``3.0 -> "3"``), because an integer column with missing values is read as floats.
    Everything else is ``str(value)``.
    """
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)
