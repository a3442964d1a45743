"""The one config check: every problem with its YAML path, nothing started or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelml.config import parse
from otelml.errors import ConfigError
from otelml.gateway.validation import CheckedConfig, check


def test_profiles_are_loaded_once_and_problems_name_their_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    config = parse(
        {
            "models": [{"name": "a"}, {"name": "b", "reference": str(broken)}],
            "queue": {"directory": str(tmp_path / "queue")},
        }
    )
    with pytest.raises(ConfigError) as error:
        check(config)
    (problem,) = error.value.problems
    assert problem.startswith("models.1.reference: ")
    assert not (tmp_path / "queue").exists()  # a check writes nothing


def test_a_checked_config_is_not_checked_again(tmp_path: Path) -> None:
    config = parse({"models": [{"name": "a", "version": "2", "segments": ["c"]}]})
    checked = check(config)
    assert isinstance(checked, CheckedConfig)
    assert check(checked) is checked
    (model,) = checked.models
    assert (model.name, model.version, model.profile, model.segments) == ("a", "2", None, ("c",))
