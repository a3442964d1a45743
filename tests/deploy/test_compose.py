"""deploy/compose: the Compose file is valid for the Compose Specification (its JSON schema, as
docker-compose 1.29.2 ships it, and the `compose_spec` parser), every file it mounts exists, the
versions are the charts' application versions, and the configs it mounts agree with each other."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from compose_spec import PyCompose

from tests.deploy.helm import ROOT, STACK_CHART

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
SCHEMA_WHEEL = ROOT / ".cache" / "docker_compose-1.29.2-py2.py3-none-any.whl"
#: The application versions of the pinned charts (Chart.yaml appVersion of each).
APP_VERSIONS = {
    "grafana": "grafana/grafana:13.2.0",  # grafana chart 12.11.1
    "loki": "grafana/loki:3.7.6",  # loki chart 18.11.0
    "tempo": "grafana/tempo:2.10.8",  # tempo chart 2.2.4
    "prometheus": "prom/prometheus:v3.14.0",  # prometheus chart 29.27.0
}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def _schema() -> dict[str, Any]:
    if not SCHEMA_WHEEL.exists():
        message = f"{SCHEMA_WHEEL} is missing: run `make {SCHEMA_WHEEL.relative_to(ROOT)}`"
        if os.environ.get("OTELML_REQUIRE_ALL") or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with zipfile.ZipFile(SCHEMA_WHEEL) as wheel:
        return json.loads(wheel.read("compose/config/compose_spec.json"))  # type: ignore[no-any-return]


def test_valid_against_the_compose_specification_schema() -> None:
    schema = _schema()
    jsonschema.Draft201909Validator(schema).validate(compose())
    broken = compose()
    broken["services"]["gateway"]["depends_on"]["tempo"] = {"condition": "service_up"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(schema).validate(broken)


def test_parsed_by_a_compose_implementation() -> None:
    parsed = PyCompose.from_yaml(COMPOSE.read_text())
    assert sorted(parsed.service_names()) == [
        "gateway",
        "grafana",
        "locust",
        "loki",
        "model",
        "prometheus",
        "reference",
        "tempo",
    ]
    with pytest.raises(Exception, match="bogus"):
        PyCompose.from_yaml(COMPOSE.read_text().replace("    restart:", "    bogus:", 1))


def test_images_are_the_charts_application_versions() -> None:
    services = compose()["services"]
    assert {name: services[name]["image"] for name in APP_VERSIONS} == APP_VERSIONS
    stack = yaml.safe_load((STACK_CHART / "Chart.yaml").read_text())
    versions = {d["name"]: d["version"] for d in stack["dependencies"]}
    assert versions == {
        "otelml": "0.1.0",
        "grafana": "12.11.1",
        "loki": "18.11.0",
        "tempo": "2.2.4",
        "prometheus": "29.27.0",
    }


def _bind_sources(service: dict[str, Any]) -> list[Path]:
    sources = []
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            sources.append((COMPOSE_DIR / source).resolve())
    return sources


def test_every_mounted_file_and_build_input_exists() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for source in _bind_sources(service):
            assert source.exists(), f"{name} mounts {source}, which does not exist"
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert context == ROOT
            assert (context / build["dockerfile"]).is_file()
    # Grafana mounts the one copy of the provisioning that the chart packs too.
    grafana = [str(s.relative_to(ROOT)) for s in _bind_sources(services["grafana"])]
    assert grafana == [
        "deploy/grafana/provisioning/datasources",
        "deploy/grafana/provisioning/dashboards",
        "deploy/grafana/dashboards",
    ]
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/otelml.yaml").read_text()
    )
    mounts = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert provider["providers"][0]["options"]["path"] in mounts
    locust = services["locust"]
    assert "/mnt/examples/bentoml_service/locustfile.py" in locust["command"]
    assert (ROOT / "examples/bentoml_service/locustfile.py").is_file()
    assert "../../examples:/mnt/examples:ro" in locust["volumes"]
    # The load test reads the training rows the `reference` service wrote, and the gateway.
    assert "references:/references:ro" in locust["volumes"]
    assert locust["environment"]["OTELML_TRAINING_CSV"] == "/references/training.csv"
    assert services["reference"]["command"][-1] == "/references"


def test_grafana_gets_every_variable_the_datasources_read() -> None:
    text = (ROOT / "deploy/grafana/provisioning/datasources/otelml.yaml").read_text()
    wanted = set(re.findall(r"(?<!\$)\$\{(OTELML_\w+)\}", text))
    assert wanted == {"OTELML_PROMETHEUS_URL", "OTELML_LOKI_URL", "OTELML_TEMPO_URL"}
    compose_env = compose()["services"]["grafana"]["environment"]
    chart_env = yaml.safe_load((STACK_CHART / "values.yaml").read_text())["grafana"]["env"]
    assert wanted <= compose_env.keys() and wanted <= chart_env.keys()


def _ports(service: dict[str, Any]) -> set[int]:
    return {int(p.split(":")[-1]) for p in service.get("ports", [])}


def test_every_url_names_a_service_and_a_port_it_listens_on(tmp_path: Path) -> None:
    services = compose()["services"]
    gateway = yaml.safe_load((COMPOSE_DIR / "gateway.yaml").read_text())
    tempo = yaml.safe_load((COMPOSE_DIR / "tempo.yaml").read_text())
    loki = yaml.safe_load((COMPOSE_DIR / "loki.yaml").read_text())
    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    listening = {
        "tempo": {tempo["server"]["http_listen_port"]}
        | {
            int(p["endpoint"].rsplit(":", 1)[1])
            for p in tempo["distributor"]["receivers"]["otlp"]["protocols"].values()
        },
        "loki": {loki["server"]["http_listen_port"]},
        "prometheus": {9090},
        "gateway": {4317, 4318, 9464},
    }
    urls = [
        gateway["exporters"]["traces"]["endpoint"],
        gateway["exporters"]["logs"]["endpoint"],
        gateway["exporters"]["metrics"]["remote_write"],
        *services["grafana"]["environment"].values(),
        *(w["url"] for w in tempo["metrics_generator"]["storage"]["remote_write"]),
        services["model"]["environment"]["OTELML_GATEWAY"],
        services["locust"]["environment"]["OTELML_METRICS_URL"],
        services["locust"]["environment"]["OTELML_GROUND_TRUTH_URL"],
        *(f"http://{t}" for t in prometheus["scrape_configs"][0]["static_configs"][0]["targets"]),
    ]
    checked = 0
    for url in urls:
        parts = urlsplit(url)
        if parts.hostname is None:
            continue  # the GF_* settings
        assert parts.hostname in services, url
        assert parts.port in listening[parts.hostname], url
        checked += 1
    assert checked == 11
    for name, ports in listening.items():
        assert _ports(services[name]) <= ports | {3000}, name
    rules = "../prometheus/otelml-rules.yaml:/etc/prometheus/rules/otelml-rules.yaml:ro"
    assert rules in services["prometheus"]["volumes"]
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/otelml-rules.yaml"]
    assert prometheus["scrape_configs"][0]["scrape_protocols"][0] == "OpenMetricsText1.0.0"


def test_the_gateway_config_passes_the_gateways_check(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "examples/bentoml_service/train.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "reference.json").is_file()
    text = (COMPOSE_DIR / "gateway.yaml").read_text()
    text = text.replace("/etc/otelml/references/", f"{tmp_path}/").replace(
        "/var/lib/otelml/queue", str(tmp_path / "queue")
    )
    (tmp_path / "gateway.yaml").write_text(text)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "otelml.cli",
            "gateway",
            "-c",
            str(tmp_path / "gateway.yaml"),
            "--check",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    mounts = compose()["services"]["gateway"]["volumes"]
    assert "./gateway.yaml:/etc/otelml/gateway.yaml:ro" in mounts
    assert "references:/etc/otelml/references:ro" in mounts
    assert "gateway-queue:/var/lib/otelml/queue" in mounts


def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    """Debian's promtool (2.42) predates `scrape_protocols` (2.49), the one key it would not
    know: checked without it, with the rules where the container mounts them."""
    from tests.prometheus_server import prometheus_binary

    prometheus_binary()  # fails under CI when Prometheus is missing, skips elsewhere
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        assert job.pop("scrape_protocols")[0] == "OpenMetricsText1.0.0"
    (rule_file,) = config["rule_files"]
    config["rule_files"] = [str(ROOT / "deploy" / "prometheus" / Path(rule_file).name)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "otelml-rules.yaml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout
