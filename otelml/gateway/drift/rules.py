"""What the drift engine needs to know of a model's configuration: window, step and rules.

Protocols (read-only), so the domain never imports the config schema: the validated config
(`otelml.config.ModelConfig`) satisfies them as it is, and tests or the batch command can pass
plain objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class RuleLike(Protocol):
    """The test of one series and its threshold (None: the method's default)."""

    @property
    def method(self) -> str: ...

    @property
    def threshold(self) -> float | None: ...


@dataclass(frozen=True)
class Rule:
    method: str = "auto"
    threshold: float | None = None


class DriftSettings(Protocol):
    """A model's drift rules: a default, per-feature and per-output overrides."""

    @property
    def method(self) -> str: ...

    @property
    def threshold(self) -> float | None: ...

    @property
    def min_samples(self) -> int: ...

    @property
    def features(self) -> Mapping[str, RuleLike]: ...

    @property
    def predictions(self) -> Mapping[str, RuleLike]: ...


class ModelDrift(Protocol):
    """One configured model, as far as drift goes (seconds)."""

    @property
    def window(self) -> float: ...

    @property
    def step(self) -> float: ...

    @property
    def drift(self) -> DriftSettings: ...
