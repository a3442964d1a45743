"""The gateway chart, rendered by a real Helm engine for the defaults and a matrix of options:
every manifest valid against the Kubernetes schemas, the rendered gateway config accepted by
`otelml gateway --check`, and the first-span command of NOTES.txt accepted by a gateway."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python
import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from otelml import profile
from tests import tls_certs
from tests.conftest import running_gateway
from tests.deploy.helm import (
    GATEWAY_CHART,
    by_kind,
    install,
    one,
    render,
    validate_strictly,
)

EXISTING_REFERENCES = {"references": {"existingConfigMap": "churn-references"}}
CHURN = {"name": "churn", "version": "3", "reference": "churn-3.json", "window": "5m"}

MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {},
    "persistence": {"persistence": {"enabled": True, "storageClass": "fast", "size": "8Gi"}},
    "hpa": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12}},
    "servicemonitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
    "tls": {"tls": {"enabled": True, "existingSecret": "otelml-tls", "clientCA": True}},
    "auth-token": {"auth": {"bearerToken": "s3cret"}},
    "auth-existing-secret": {"auth": {"existingSecret": "otelml-token", "secretKey": "t"}},
    "existing-configmap": {"models": [CHURN], **EXISTING_REFERENCES},
    "references-from-values": {"models": [CHURN], "references": {"files": {"churn-3.json": ""}}},
    "exporters-redaction-networkpolicy": {
        "exporters": {
            "traces": {"endpoint": "http://{{ .Release.Name }}-tempo:4318"},
            "logs": {"endpoint": "http://loki:3100/otlp"},
            "metrics": {"remote_write": "http://prometheus-server/api/v1/write"},
        },
        "redaction": {"enabled": True, "allow_keys": ["ml.*", "service.*"], "action": "hash"},
        "networkPolicy": {
            "enabled": True,
            "adminFrom": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}],
            "egressTo": [{"to": [{"namespaceSelector": {}}]}],
        },
        "workers": 2,
    },
}


@pytest.fixture(scope="module")
def reference_json(tmp_path_factory: pytest.TempPathFactory) -> str:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 500), "plan": rng.choice(["a", "b"], 500)})
    path = tmp_path_factory.mktemp("ref") / "churn-3.json"
    profile.save(profile.build(frame, model="churn", version="3"), path)
    return path.read_text()


def _values(case: str, reference_json: str) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(json.dumps(MATRIX[case]))
    if case == "references-from-values":
        values["references"]["files"]["churn-3.json"] = reference_json
    return values


def gateway_config(docs: list[dict[str, Any]]) -> str:
    config_map = next(d for d in by_kind(docs, "ConfigMap") if "gateway.yaml" in d["data"])
    return str(config_map["data"]["gateway.yaml"])


def check_config(
    text: str, tmp_path: Path, reference_json: str
) -> subprocess.CompletedProcess[str]:
    """`otelml gateway --check` on the rendered config, the pod's mounts laid out under tmp_path."""
    etc = tmp_path / "etc-otelml"
    (etc / "references").mkdir(parents=True)
    (etc / "references" / "churn-3.json").write_text(reference_json)
    (tmp_path / "certs").mkdir()
    certs = tls_certs.make(tmp_path / "certs")
    (etc / "tls").mkdir()
    (etc / "tls" / "tls.crt").write_bytes(certs.server_cert.read_bytes())
    (etc / "tls" / "tls.key").write_bytes(certs.server_key.read_bytes())
    (etc / "tls" / "ca.crt").write_bytes(certs.ca.read_bytes())
    local = text.replace("/etc/otelml/", f"{etc}/").replace("/var/lib/otelml/", f"{tmp_path}/")
    config = tmp_path / "gateway.yaml"
    config.write_text(local)
    return subprocess.run(
        [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(config), "--check"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OTELML_BEARER_TOKEN": "from-the-secret"},
    )


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_renders_valid_manifests_and_a_config_the_gateway_accepts(
    case: str, tmp_path: Path, reference_json: str
) -> None:
    docs = render(GATEWAY_CHART, _values(case, reference_json))
    skipped = validate_strictly(docs)
    assert skipped == (["ServiceMonitor/ml-otelml"] if case == "servicemonitor" else [])
    result = check_config(gateway_config(docs), tmp_path, reference_json)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "configuration ok"


def _workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (workload,) = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    return workload


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _workload(docs)["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def test_defaults_services_probes_and_security() -> None:
    docs = render(GATEWAY_CHART)
    workload = _workload(docs)
    assert workload["kind"] == "Deployment" and workload["spec"]["replicas"] == 2
    service = one(docs, "Service", "ml-otelml")
    ports = {p["name"]: (p["port"], p.get("appProtocol")) for p in service["spec"]["ports"]}
    assert ports == {
        "otlp-grpc": (4317, "grpc"),
        "otlp-http": (4318, "http"),
        "admin": (9464, "http"),
    }
    headless = one(docs, "Service", "ml-otelml-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert {p["port"] for p in headless["spec"]["ports"]} == {4317, 4318}
    container = _container(docs)
    assert container["args"] == ["-c", "/etc/otelml/gateway.yaml"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Longer than the preStop pause + the gateway's drain (5 s) + the gRPC connection grace.
    assert pod["terminationGracePeriodSeconds"] > 5 + 5
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert {v["name"]: v.get("emptyDir") for v in pod["volumes"]}["queue"] == {}
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    config = yaml.safe_load(gateway_config(docs))
    assert config["receivers"]["otlp"]["grpc"] == {
        "endpoint": "0.0.0.0:4317",
        "max_connection_age": "5m",
        "max_connection_age_grace": "30s",
    }
    assert config["queue"]["directory"] == "/var/lib/otelml/queue"
    assert "auth" not in config and "exporters" not in config


def test_persistence_makes_a_statefulset_with_one_claim_per_replica() -> None:
    docs = render(GATEWAY_CHART, MATRIX["persistence"])
    workload = _workload(docs)
    assert workload["kind"] == "StatefulSet"
    assert workload["spec"]["serviceName"] == "ml-otelml-headless"
    (claim,) = workload["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "queue"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    volumes = {v["name"] for v in workload["spec"]["template"]["spec"]["volumes"]}
    assert "queue" not in volumes  # the claim, not an emptyDir
    mounts = {m["name"]: m["mountPath"] for m in _container(docs)["volumeMounts"]}
    assert mounts["queue"] == "/var/lib/otelml/queue"


def test_hpa_scales_the_workload_and_replicas_are_left_to_it() -> None:
    docs = render(GATEWAY_CHART, MATRIX["hpa"])
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ml-otelml",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert "replicas" not in _workload(docs)["spec"]


def test_servicemonitor_scrapes_the_admin_port_of_the_main_service_only() -> None:
    docs = render(GATEWAY_CHART, MATRIX["servicemonitor"])
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "admin" and endpoint["path"] == "/metrics"
    assert monitor["spec"]["scrapeProtocols"][0] == "OpenMetricsText1.0.0"
    selector = monitor["spec"]["selector"]
    services = [
        s
        for s in by_kind(docs, "Service")
        if selector["matchLabels"].items() <= s["metadata"]["labels"].items()
        and "otelml.io/service" not in s["metadata"]["labels"]
    ]
    assert [s["metadata"]["name"] for s in services] == ["ml-otelml"]


def test_tls_and_auth_come_from_secrets() -> None:
    docs = render(GATEWAY_CHART, {**MATRIX["tls"], **MATRIX["auth-existing-secret"]})
    config = yaml.safe_load(gateway_config(docs))
    tls = {
        "cert_file": "/etc/otelml/tls/tls.crt",
        "key_file": "/etc/otelml/tls/tls.key",
        "client_ca_file": "/etc/otelml/tls/ca.crt",
    }
    assert config["receivers"]["otlp"]["grpc"]["tls"] == tls
    assert config["receivers"]["otlp"]["http"]["tls"] == tls
    assert config["auth"] == {"bearer_token": "${OTELML_BEARER_TOKEN}"}
    pod = _workload(docs)["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": "otelml-tls"}} in pod["volumes"]
    (env,) = _container(docs)["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "otelml-token", "key": "t"}
    assert by_kind(docs, "Secret") == []  # existing Secrets are referenced, not created


def test_a_misspelt_value_is_refused_by_the_values_schema() -> None:
    with pytest.raises(helm_python.HelmError, match="'persistance' not allowed"):
        render(GATEWAY_CHART, {"persistance": {"enabled": True}})
    with pytest.raises(helm_python.HelmError, match="fsync"):
        render(GATEWAY_CHART, {"queue": {"fsync": "sometimes"}})


def test_tls_without_a_secret_is_refused_with_a_message() -> None:
    with pytest.raises(helm_python.HelmError, match=r"tls\.existingSecret is required"):
        render(GATEWAY_CHART, {"tls": {"enabled": True}})


def test_a_bearer_token_from_values_gets_its_own_secret() -> None:
    docs = render(GATEWAY_CHART, MATRIX["auth-token"])
    secret = one(docs, "Secret", "ml-otelml-auth")
    assert secret["data"] == {"token": "czNjcmV0"}  # base64("s3cret")


def test_references_from_an_existing_configmap_are_mounted_where_the_models_point(
    reference_json: str,
) -> None:
    docs = render(GATEWAY_CHART, MATRIX["existing-configmap"])
    config = yaml.safe_load(gateway_config(docs))
    assert config["models"][0]["reference"] == "/etc/otelml/references/churn-3.json"
    pod = _workload(docs)["spec"]["template"]["spec"]
    assert {"name": "references", "configMap": {"name": "churn-references"}} in pod["volumes"]
    assert [c["metadata"]["name"] for c in by_kind(docs, "ConfigMap")] == ["ml-otelml"]
    own = render(GATEWAY_CHART, _values("references-from-values", reference_json))
    references = one(own, "ConfigMap", "ml-otelml-references")
    assert json.loads(references["data"]["churn-3.json"]) == json.loads(reference_json)


def test_exporter_endpoints_may_name_the_release() -> None:
    docs = render(GATEWAY_CHART, MATRIX["exporters-redaction-networkpolicy"], release="obs")
    config = yaml.safe_load(gateway_config(docs))
    assert config["exporters"]["traces"] == {"endpoint": "http://obs-tempo:4318"}
    assert config["workers"] == 2
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_the_chart_lints_clean() -> None:
    result = helm_python.lint(str(GATEWAY_CHART), strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []


def test_the_first_span_of_the_notes_reaches_a_gateway() -> None:
    notes = install(GATEWAY_CHART)["notes"]
    command = next(line for line in notes.splitlines() if "curl -s http" in line and "/v1/" in line)
    argv = shlex.split(command)
    body = argv[argv.index("-d") + 1]
    url_path = re.search(r"(/v1/traces)", command)
    assert url_path is not None
    with running_gateway() as gateway:
        response = httpx.post(
            gateway.http_url + url_path.group(1),
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        samples = gateway.samples()
    count = samples[
        (
            "otelml_feature_value_bucket",
            frozenset(
                {"model": "demo", "model_version": "", "feature": "age", "le": "+Inf"}.items()
            ),
        )
    ]
    assert count.value == 1.0
