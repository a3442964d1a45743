"""A gateway state whose drift engine watches one configured model, for in-process tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otelml import profile
from otelml.config import parse
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.validation import load_models


def drifting_state(
    tmp_path: Path, reference: profile.Profile, **model: Any
) -> tuple[GatewayState, DriftEngine]:
    """Model `m` version 1 against `reference`, saved and loaded as a configured one would be;
    `model` adds to (or overrides) its config keys (window, step, drift, attribution, …)."""
    path = tmp_path / "reference.json"
    profile.save(reference, path)
    config = parse({"models": [{"name": "m", "version": "1", "reference": str(path), **model}]})
    models = load_models(config)
    state = GatewayState.create(models=models)
    state.drift = DriftEngine(config.models, models)
    return state, state.drift
