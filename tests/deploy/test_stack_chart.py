"""The otelml-stack umbrella chart.

CI cannot download the official charts (no chart repository is reachable), so there the stack is
rendered without them: its own templates and the gateway subchart under the stack's values, lint,
strict schemas, the gateway config through `otelml gateway --check`, and the pinned dependencies.

With the official charts' sources at hand (OTELML_OFFICIAL_CHARTS=DIR holding grafana, loki,
tempo, prometheus and prometheus' own dependencies, e.g. from the GitHub repositories
grafana-community/helm-charts and prometheus-community/helm-charts), the whole stack is rendered
and every Service name and port the values point at is checked against what the subcharts
really create. That part cannot run in CI and says so when skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python
import pytest
import yaml

from tests.deploy.helm import (
    GATEWAY_CHART,
    ROOT,
    STACK_CHART,
    by_kind,
    install,
    one,
    render,
    validate_strictly,
)

OFFICIAL = {
    "grafana": ("12.11.1", "https://grafana-community.github.io/helm-charts"),
    "loki": ("18.11.0", "https://grafana-community.github.io/helm-charts"),
    "tempo": ("2.2.4", "https://grafana-community.github.io/helm-charts"),
    "prometheus": ("29.27.0", "https://prometheus-community.github.io/helm-charts"),
}
PROMETHEUS_DEPENDENCIES = [
    "alertmanager",
    "kube-state-metrics",
    "prometheus-node-exporter",
    "prometheus-pushgateway",
]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


def _stack_copy(tmp_path: Path, official: Path | None) -> Path:
    """The stack chart as `helm dependency build` leaves it: files/ resolved, charts/ filled.
    Without the official charts, their entries are dropped from the copy's Chart.yaml."""
    chart = tmp_path / "otelml-stack"
    shutil.copytree(STACK_CHART, chart, symlinks=False)
    shutil.copytree(GATEWAY_CHART, chart / "charts" / "otelml")
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    if official is None:
        meta["dependencies"] = [d for d in meta["dependencies"] if d["name"] == "otelml"]
    else:
        for name in OFFICIAL:
            shutil.copytree(official / name, chart / "charts" / name)
        for name in PROMETHEUS_DEPENDENCIES:
            shutil.copytree(official / name, chart / "charts" / "prometheus" / "charts" / name)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return chart


def _gateway_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(one(docs, "ConfigMap", "otelml-gateway")["data"]["gateway.yaml"])  # type: ignore[no-any-return]


def test_dependencies_are_the_official_charts_pinned() -> None:
    meta = yaml.safe_load((STACK_CHART / "Chart.yaml").read_text())
    dependencies = {d["name"]: d for d in meta["dependencies"]}
    assert dependencies["otelml"]["repository"] == "file://../otelml"
    for name, (version, repository) in OFFICIAL.items():
        assert (dependencies[name]["version"], dependencies[name]["repository"]) == (
            version,
            repository,
        )
        assert dependencies[name]["condition"] == f"{name}.enabled"


def test_one_copy_of_provisioning_and_rules() -> None:
    files = STACK_CHART / "files"
    assert (files / "grafana").is_symlink() and (files / "grafana").resolve() == (
        ROOT / "deploy" / "grafana"
    )
    assert (files / "prometheus").resolve() == ROOT / "deploy" / "prometheus"


def test_without_the_official_charts_the_stack_renders_lints_and_wires_the_gateway(
    tmp_path: Path,
) -> None:
    chart = _stack_copy(tmp_path, official=None)
    lint = helm_python.lint(str(chart), strict=True)
    assert lint["errors"] == []
    assert [m for m in lint["messages"] if m["severity"] > 1] == []
    docs = render(chart, release="obs")
    assert validate_strictly(docs) == []
    grafana_dir = ROOT / "deploy" / "grafana"
    datasources = one(docs, "ConfigMap", "otelml-grafana-datasources")["data"]["otelml.yaml"]
    assert datasources == (grafana_dir / "provisioning" / "datasources" / "otelml.yaml").read_text()
    dashboards = one(docs, "ConfigMap", "otelml-grafana-dashboards")["data"]
    assert dashboards == {
        p.name: p.read_text() for p in (grafana_dir / "dashboards").glob("*.json")
    }
    rules = one(docs, "ConfigMap", "otelml-prometheus-rules")["data"]["otelml-rules.yaml"]
    assert rules == (ROOT / "deploy" / "prometheus" / "otelml-rules.yaml").read_text()
    config = _gateway_config(docs)
    assert config["exporters"] == {
        "traces": {"endpoint": "http://otelml-tempo:4318"},
        "logs": {"endpoint": "http://otelml-loki:3100/otlp"},
        "metrics": {"remote_write": "http://otelml-prometheus-server:80/api/v1/write"},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({**config, "queue": {"directory": str(tmp_path / "q")}}))
    check = subprocess.run(
        [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(path), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    pod = one(docs, "Deployment", "otelml-gateway")["spec"]["template"]["metadata"]
    assert "prometheus.io/scrape" not in pod["annotations"]  # scraped by the stack's own job


# --- with the official charts (a developer's machine) ------------------------------------------


def _official_charts() -> Path:
    location = os.environ.get("OTELML_OFFICIAL_CHARTS")
    if not location:
        if os.environ.get("OTELML_REQUIRE_ALL"):
            pytest.fail("`make test-stack` needs OTELML_OFFICIAL_CHARTS=DIR (deploy/README.md)")
        pytest.skip(
            "OTELML_OFFICIAL_CHARTS is not set: the official charts cannot be downloaded here "
            "(and never in CI); see deploy/README.md for how to check the whole stack"
        )
    path = Path(location)
    missing = [n for n in [*OFFICIAL, *PROMETHEUS_DEPENDENCIES] if not (path / n).is_dir()]
    assert not missing, f"{path} lacks {missing}"
    for name, (version, _) in OFFICIAL.items():
        assert yaml.safe_load((path / name / "Chart.yaml").read_text())["version"] == version
    return path


@pytest.fixture(scope="module")
def full_stack(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    official = _official_charts()
    chart = _stack_copy(tmp_path_factory.mktemp("stack"), official)
    return render(chart, release="obs")


def _pods(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d["spec"]["template"] for d in docs if d["kind"] in WORKLOADS]


def _serves(docs: list[dict[str, Any]], host: str, port: int) -> str:
    """The Service `host` has `port`, and its targetPort is a container port of a pod it selects."""
    services = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == host]
    assert len(services) == 1, f"no Service named {host}"
    service = services[0]
    ports = [p for p in service["spec"]["ports"] if p["port"] == port]
    assert ports, f"Service {host} has no port {port}: {service['spec']['ports']}"
    target = ports[0].get("targetPort", port)
    selector = service["spec"]["selector"]
    for pod in _pods(docs):
        if selector.items() <= pod["metadata"]["labels"].items():
            for container in pod["spec"]["containers"]:
                for container_port in container.get("ports", []):
                    if target in (container_port.get("name"), container_port["containerPort"]):
                        return (
                            f"{host}:{port} → {container['name']}:{container_port['containerPort']}"
                        )
    raise AssertionError(f"Service {host}:{port} targets {target}, which no selected pod exposes")


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return parts.hostname, parts.port


@pytest.mark.official_charts
def test_every_manifest_of_the_whole_stack_is_valid(full_stack: list[dict[str, Any]]) -> None:
    assert validate_strictly(full_stack) == []


@pytest.mark.official_charts
def test_every_service_the_values_point_at_exists_with_that_port(
    full_stack: list[dict[str, Any]],
) -> None:
    docs = full_stack
    checked = []
    config = _gateway_config(docs)
    urls = [
        config["exporters"]["traces"]["endpoint"],
        config["exporters"]["logs"]["endpoint"],
        config["exporters"]["metrics"]["remote_write"],
    ]
    (grafana,) = one(docs, "Deployment", "otelml-grafana")["spec"]["template"]["spec"][
        "containers"
    ][:1]
    env = {e["name"]: e.get("value") for e in grafana["env"]}
    urls += [env["OTELML_PROMETHEUS_URL"], env["OTELML_LOKI_URL"], env["OTELML_TEMPO_URL"]]
    tempo = yaml.safe_load(one(docs, "ConfigMap", "tempo")["data"]["tempo.yaml"])
    urls += [w["url"] for w in tempo["metrics_generator"]["storage"]["remote_write"]]
    for url in urls:
        checked.append(_serves(docs, *_host_port(url)))
    prometheus = "otelml-prometheus-server:80 → prometheus-server:9090"
    assert checked == [
        "otelml-tempo:4318 → tempo:4318",  # gateway traces, OTLP/HTTP
        "otelml-loki:3100 → loki:3100",  # gateway logs, /otlp
        prometheus,  # gateway app metrics, remote write
        prometheus,  # Grafana's Prometheus datasource
        "otelml-loki:3100 → loki:3100",  # Grafana's Loki datasource
        "otelml-tempo:3200 → tempo:3200",  # Grafana's Tempo datasource
        prometheus,  # Tempo's metrics generator, remote write
    ]
    # Grafana's query ports are the ones the backends listen on.
    assert _host_port(env["OTELML_TEMPO_URL"])[1] == tempo["server"]["http_listen_port"]


@pytest.mark.official_charts
def test_prometheus_scrapes_the_gateway_with_exemplars_and_loads_the_rules(
    full_stack: list[dict[str, Any]],
) -> None:
    docs = full_stack
    server = one(docs, "Deployment", "otelml-prometheus-server")["spec"]["template"]["spec"]
    (container,) = [c for c in server["containers"] if c["name"].endswith("server")]
    assert "--web.enable-remote-write-receiver" in container["args"]
    assert "--enable-feature=exemplar-storage" in container["args"]
    config = yaml.safe_load(
        one(docs, "ConfigMap", "otelml-prometheus-server")["data"]["prometheus.yml"]
    )
    assert "/etc/otelml-rules/otelml-rules.yaml" in config["rule_files"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in server["volumes"]}
    assert volumes[mounts["/etc/otelml-rules"]]["configMap"]["name"] == "otelml-prometheus-rules"
    one(docs, "ConfigMap", "otelml-prometheus-rules")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "otelml"]
    assert job["scrape_protocols"][0] == "OpenMetricsText1.0.0"
    (keep,) = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    wanted = dict(zip(keep["source_labels"], keep["regex"].split(";"), strict=True))
    label = "__meta_kubernetes_pod_label_"
    scraped = []
    for pod in _pods(docs):
        labels = {
            label + k.replace(".", "_").replace("/", "_").replace("-", "_"): v
            for k, v in pod["metadata"]["labels"].items()
        }
        for c in pod["spec"]["containers"]:
            for p in c.get("ports", []):
                meta = {**labels, "__meta_kubernetes_pod_container_port_name": p.get("name")}
                if all(meta.get(k) == v for k, v in wanted.items()):
                    scraped.append((c["name"], p["containerPort"]))
    assert scraped == [("gateway", 9464)]


@pytest.mark.official_charts
def test_grafana_mounts_the_provisioning_where_the_files_expect_it(
    full_stack: list[dict[str, Any]],
) -> None:
    docs = full_stack
    pod = one(docs, "Deployment", "otelml-grafana")["spec"]["template"]["spec"]
    (grafana,) = [c for c in pod["containers"] if c["name"] == "grafana"]
    volumes = {v["name"]: v.get("configMap", {}).get("name") for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes.get(m["name"]) for m in grafana["volumeMounts"]}
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/otelml.yaml").read_text()
    )
    assert (
        mounts["/etc/grafana/provisioning/datasources/otelml.yaml"] == "otelml-grafana-datasources"
    )
    assert (
        mounts["/etc/grafana/provisioning/dashboards/otelml.yaml"]
        == "otelml-grafana-dashboard-provider"
    )
    assert mounts[provider["providers"][0]["options"]["path"]] == "otelml-grafana-dashboards"
    for name in (
        "otelml-grafana-datasources",
        "otelml-grafana-dashboard-provider",
        "otelml-grafana-dashboards",
    ):
        one(docs, "ConfigMap", name)


def test_notes_say_how_to_reach_grafana(tmp_path: Path) -> None:
    chart = _stack_copy(tmp_path, official=None)
    notes = install(chart, release="obs")["notes"]
    assert "port-forward svc/otelml-grafana 3000:80" in notes
    assert "http://otelml-gateway.ml:4318" in notes
