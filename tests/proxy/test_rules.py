"""Rules files: the shipped examples load; every mistake is reported with its YAML path, all at
once, before the proxy binds a port."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelml.cli import main
from otelml.errors import ConfigError
from otelml.proxy import load, parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proxy"


def _problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse(data)
    return error.value.problems


def test_examples_load() -> None:
    tfs = load(EXAMPLES / "tfserving-rules.yaml", environ={})
    assert [r.path for r in tfs.routes] == [
        "/v1/models/{model}/versions/{version}:predict",
        "/v1/models/{model}/labels/{label}:predict",
        "/v1/models/{model}:predict",
    ]
    assert tfs.routes[2].model.version == "latest"  # ${CHURN_VERSION:-latest}
    assert load(EXAMPLES / "tfserving-rules.yaml", environ={"CHURN_VERSION": "7"}).routes[
        2
    ].model.version == ("7")
    fastapi = load(EXAMPLES / "fastapi-rules.yaml", environ={})
    assert fastapi.routes[1].prediction_id is not None
    assert str(fastapi.routes[1].prediction_id.request) == "$.rows[*].request_id"


def test_route_patterns_match_one_segment_per_placeholder() -> None:
    rules = parse(
        {
            "routes": [
                {
                    "path": "/v1/models/{model}:predict",
                    "model": {"name": "{model}"},
                    "features": {"rows": "$.instances[*]"},
                }
            ]
        }
    )
    pattern = rules.routes[0].pattern()
    match = pattern.fullmatch("/v1/models/churn:predict")
    assert match is not None and match.groupdict() == {"model": "churn"}
    assert pattern.fullmatch("/v1/models/churn/versions/3:predict") is None
    assert pattern.fullmatch("/v1/models/a.b:predict") is not None  # regex characters escaped
    assert pattern.fullmatch("/v1Xmodels/churn:predict") is None


def test_every_problem_is_reported_with_its_yaml_path() -> None:
    problems = _problems(
        {
            "max_body_bytes": "lots",
            "routes": [
                {
                    "method": "post",
                    "path": "v1/predict",
                    "model": {"name": "m"},
                    "features": {"rows": "instances[*]"},
                },
                {
                    "path": "/p",
                    "model": {"name": ""},
                    "features": {"fields": {"age": "$.age["}},
                    "predictions": {},
                    "slices": {"tenant": {"header": "X-Tenant", "request": "$.t"}},
                    "prediction_id": 3,
                    "unknown": 1,
                },
            ],
        }
    )
    assert problems == [
        "max_body_bytes: expected a size such as 16MiB or 1GiB, got 'lots'",
        "routes.0.method: expected an HTTP method such as POST (or *), got 'post'",
        "routes.0.path: a route path starts with /, got 'v1/predict'",
        "routes.0.features.rows: a path starts with $, got 'instances[*]'",
        "routes.1.model.name: String should have at least 1 character",
        "routes.1.features.fields.age: unexpected '[' at position 5 of '$.age['",
        "routes.1.predictions: give rows, columnar or fields",
        "routes.1.prediction_id: Input should be a valid dictionary or instance of Source",
        "routes.1.slices.tenant: give exactly one of request, response, header",
        "routes.1.unknown: unknown key",
    ]


def test_cross_checks_after_the_types() -> None:
    problems = _problems(
        {
            "routes": [
                {"path": "/v1/models/{model}:predict", "model": {"name": "{name}"}},
                {
                    "path": "/p/{a}",
                    "model": {"name": "m", "version": "{a}-{b}"},
                    "features": {"rows": "$[*]", "columns": ["x", "x"]},
                },
            ]
        }
    )
    assert problems == [
        "routes.0.model.name: {name} is not a placeholder of the path '/v1/models/{model}:predict'",
        "routes.0: give features, predictions or both",
        "routes.1.model.version: {b} is not a placeholder of the path '/p/{a}'",
        "routes.1.features.columns: names must be unique",
    ]


def test_root_must_be_a_mapping_and_files_must_exist(tmp_path: Path) -> None:
    assert _problems(["routes"]) == ["<root>: expected a mapping with routes: [...]"]
    with pytest.raises(ConfigError) as error:
        load(tmp_path / "absent.yaml")
    assert "cannot read rules" in error.value.problems[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: [\n")
    with pytest.raises(ConfigError) as error:
        load(bad)
    assert "invalid YAML" in error.value.problems[0]


def test_cli_check_exits_2_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("routes:\n  - path: nope\n    model: {name: m}\n    features: {rows: x}\n")
    assert main(["proxy", "--upstream", "http://x", "-c", str(rules), "--check"]) == 2
    err = capsys.readouterr().err
    assert "routes.0.path: a route path starts with /" in err
    assert "routes.0.features.rows: a path starts with $" in err
    assert (
        main(
            [
                "proxy",
                "--upstream",
                "http://x",
                "-c",
                str(EXAMPLES / "fastapi-rules.yaml"),
                "--check",
            ]
        )
        == 0
    )
