"""The one complete check of a gateway config: what `otelml gateway --check` runs.

`otelml.config` validates the document (types, ranges, cross-field rules, files that must
exist); this adds what needs reading those files — the reference profiles — and hands the
result on as a `CheckedConfig`, so the gateway never loads them a second time. Nothing here
binds a port, forks, writes a queue or tunes the process: a check has no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass

from otelml.config import GatewayConfig
from otelml.errors import ConfigError
from otelml.gateway.state.keys import AttributionSettings, ModelProfile
from otelml.profile import ProfileError
from otelml.profile import load as load_profile


@dataclass(frozen=True)
class CheckedConfig:
    """A config that passed every check, with what checking it loaded."""

    config: GatewayConfig
    #: One per `models` entry, in order, with its reference profile (None: no reference).
    models: list[ModelProfile]


def check(config: GatewayConfig | CheckedConfig) -> CheckedConfig:
    """Every problem at once, as a `ConfigError` naming each one's YAML path."""
    if isinstance(config, CheckedConfig):
        return config
    return CheckedConfig(config, load_models(config))


def load_models(config: GatewayConfig) -> list[ModelProfile]:
    """Load every configured reference profile; problems are config errors with their path."""
    problems: list[str] = []
    models: list[ModelProfile] = []
    for index, model in enumerate(config.models):
        profile = None
        if model.reference is not None:
            try:
                profile = load_profile(model.reference)
            except ProfileError as exc:
                problems.append(f"models.{index}.reference: {exc}")
        attribution = model.attribution
        settings = (
            AttributionSettings(attribution.all_keys(), attribution.values, attribution.top)
            if attribution.enabled and attribution.all_keys()
            else None
        )
        models.append(
            ModelProfile(model.name, model.version, profile, tuple(model.segments), settings)
        )
    if problems:
        raise ConfigError(problems)
    return models
