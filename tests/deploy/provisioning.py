"""Grafana's provisioning files as Grafana reads them: environment expanded, `$$` a literal `$`."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.helm import ROOT

GRAFANA = ROOT / "deploy" / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "otelml.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "otelml.yaml"
#: Grafana expands $VAR and ${VAR} in provisioning files; $$ is a literal $.
_EXPANSION = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")
URLS = {
    "OTELML_PROMETHEUS_URL": "http://prometheus:9090",
    "OTELML_LOKI_URL": "http://loki:3100",
    "OTELML_TEMPO_URL": "http://tempo:3200",
}


def grafana_expand(text: str, environ: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return environ.get(match.group(1) or match.group(2), "")

    return _EXPANSION.sub(replace, text)


def datasources(environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    text = grafana_expand(DATASOURCES.read_text(), environ or URLS)
    document = yaml.safe_load(text)
    assert document["apiVersion"] == 1
    return {d["uid"]: d for d in document["datasources"]}
