"""Extra Python environments some tests run app code in (made by `make app-venvs`).

A missing environment skips those tests on a developer's machine, and fails them under CI
(`CI` or `OTELML_REQUIRE_ALL` set): CI never passes by skipping a real component.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The oldest OpenTelemetry SDK otelml.instrument supports, BentoML 1.4's floor (~= 1.20):
#: the install matrix's row with otelml's wheel installed beside SDK 1.20, numpy and pandas.
SDK_FLOOR = ROOT / ".venv-app-sdk-floor" / "bin" / "python"


def require(python: Path, made_by: str) -> str:
    if python.exists():
        return str(python)
    message = f"{python.parent.parent.name} is missing: run `{made_by}`"
    if os.environ.get("OTELML_REQUIRE_ALL") or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def example_reference(directory: Path) -> Path:
    """The examples' reference profile, written by their train.py as their READMEs run it."""
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "bentoml_service" / "train.py"), str(directory)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return directory / "reference.json"
