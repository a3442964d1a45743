"""Render charts with a real Helm engine (Helm v4, `helm-python-sdk`) offline, no cluster,
and validate what comes out against the Kubernetes schemas (`kubernetes-validate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_CHART = ROOT / "deploy" / "helm" / "otelml"
STACK_CHART = ROOT / "deploy" / "helm" / "otelml-stack"
NAMESPACE = "ml"
#: Kinds whose schemas are custom resource definitions, not in kubernetes-validate.
CUSTOM_KINDS = {"ServiceMonitor"}


def install(
    chart: Path, values: dict[str, Any] | None = None, release: str = "ml"
) -> dict[str, Any]:
    """`helm install --dry-run=client`: the release with its manifest and notes."""
    config = helm_python.Config(storage_driver="memory", namespace=NAMESPACE)
    release_info: dict[str, Any] = config.install(
        str(chart), release, values or {}, dry_run="client", namespace=NAMESPACE
    )
    return release_info


def documents(manifest: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(manifest) if d]


def render(
    chart: Path, values: dict[str, Any] | None = None, release: str = "ml"
) -> list[dict[str, Any]]:
    return documents(install(chart, values, release)["manifest"])


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def validate_strictly(docs: list[dict[str, Any]]) -> list[str]:
    """Every manifest against the newest shipped schemas, unknown fields rejected; the names
    of the custom-resource manifests (not validated here) are returned."""
    version = kubernetes_validate.latest_version()
    skipped = []
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            skipped.append(f"{doc['kind']}/{doc['metadata']['name']}")
            continue
        kubernetes_validate.validate(doc, version, strict=True)
    return skipped
