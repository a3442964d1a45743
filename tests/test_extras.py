"""`needs(extra)`: an uninstalled dependency becomes one line naming the extra; ours stays a bug."""

from __future__ import annotations

import pytest

from otelml.errors import MissingExtra
from otelml.extras import needs


def test_a_missing_third_party_module_names_its_extra() -> None:
    with pytest.raises(MissingExtra) as caught, needs("gateway"):
        import no_such_module_here.sub  # type: ignore[import-not-found]  # noqa: F401
    assert (caught.value.extra, caught.value.module) == ("gateway", "no_such_module_here")
    assert str(caught.value) == (
        "no_such_module_here is not installed; it comes with otelml[gateway]: "
        "pip install 'otelml[gateway]'"
    )


def test_a_missing_module_of_otelml_itself_is_not_hidden() -> None:
    with pytest.raises(ModuleNotFoundError) as caught, needs("gateway"):
        import otelml.no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert caught.value.name == "otelml.no_such_module"


def test_other_errors_pass_through() -> None:
    with pytest.raises(ValueError, match="boom"), needs("gateway"):
        raise ValueError("boom")
