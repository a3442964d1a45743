"""Every row of the install matrix (`make app-venvs`): installed by pip, light, and counted.

Each row is a fresh environment with its Python's own pip, the built wheel and the row's
requirements (tests/install/matrix.py). Here: the pip that did it is the one a new venv ships
and it resolved in well under a minute; what is installed is exactly what the row's
requirements and otelml's app side need (otelml itself brings only the OpenTelemetry SDK and
OTLP exporters, so no gateway-only package is there unless the row's own software needs it);
`import otelml.instrument` imports neither numpy, pandas nor the gateway; and the spans a
service sends from that environment are counted exactly by a gateway.
"""

from __future__ import annotations

import ensurepip
import importlib.metadata
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import running_gateway
from tests.environments import require
from tests.install.matrix import FREEZE, RECORD, ROWS, Row, site_packages

SEND = Path(__file__).resolve().parent / "apps" / "send_spans.py"
#: What otelml's app side is: these four and what they need, nothing more.
APP_SIDE = [
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-grpc",
    "opentelemetry-exporter-otlp-proto-http",
]
#: Come with a new venv, whatever is installed.
BUNDLED = {"pip", "setuptools"}
#: A resolver that takes minutes is a defect (pip 23.2 once took 2 min on otelml's old deps).
MAX_RESOLVE_SECONDS = 60
CALLS = "traces_spanmetrics_calls_total"


def installed_row(row: Row) -> dict[str, Any]:
    require(row.venv / "bin" / "python", "make app-venvs")
    record: dict[str, Any] = json.loads((row.venv / RECORD).read_text())
    return record


def frozen(row: Row) -> set[str]:
    """The distributions `pip freeze --all` listed after the install."""
    names: set[str] = set()
    for line in (row.venv / FREEZE).read_text().splitlines():
        name = line.split("@")[0].split("==")[0].strip()
        names.add(str(canonicalize_name(name)))
    return names


class Site:
    """The installed distributions of one environment and their requirements."""

    def __init__(self, venv: Path) -> None:
        self.dists: dict[str, importlib.metadata.Distribution] = {
            str(canonicalize_name(d.metadata["Name"])): d
            for d in importlib.metadata.distributions(path=[str(site_packages(venv))])
        }

    def closure(self, roots: Iterable[Requirement]) -> set[str]:
        """Every distribution the roots need (markers evaluated, extras followed)."""
        needed: set[str] = set()
        seen: set[tuple[str, frozenset[str]]] = set()
        stack = list(roots)
        while stack:
            requirement = stack.pop()
            name = canonicalize_name(requirement.name)
            key = (name, frozenset(requirement.extras))
            if key in seen:
                continue
            seen.add(key)
            needed.add(name)
            extras = ["", *sorted(requirement.extras)]
            for line in self.dists[name].requires or []:
                child = Requirement(line)
                if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                    stack.append(child)
        return needed

    def extra_names(self, extra: str) -> set[str]:
        """What otelml's `extra` names (its own extras followed), installed or not."""
        names: set[str] = set()
        for line in self.dists["otelml"].requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or not requirement.marker.evaluate({"extra": extra}):
                continue
            if canonicalize_name(requirement.name) == "otelml":
                for inner in requirement.extras:
                    names |= self.extra_names(inner)
            else:
                names.add(canonicalize_name(requirement.name))
        return names


def row_roots(row: Row) -> list[Requirement]:
    """The row's own requirements, as its file lists them (otelml aside)."""
    lines = (line.split("#")[0].strip() for line in row.requirements.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


@pytest.mark.parametrize("name", list(ROWS))
def test_row_installs_the_app_side_and_nothing_of_the_gateway(name: str) -> None:
    row = ROWS[name]
    record = installed_row(row)
    print(f"{name}: pip {record['pip']} resolved in {record['resolve_seconds']} s")
    assert record["pip"] == ensurepip.version()  # the venv's own pip, not upgraded
    assert record["resolve_seconds"] < MAX_RESOLVE_SECONDS
    site = Site(row.venv)
    otelml = Requirement(f"otelml[{row.extras}]" if row.extras else "otelml")
    # otelml's app side is the SDK and the exporters, and what they need.
    assert site.closure([Requirement("otelml")]) == {"otelml"} | site.closure(
        Requirement(r) for r in APP_SIDE
    )
    # Nothing is installed that neither the row's software nor otelml's app side needs …
    needed = site.closure([*row_roots(row), otelml])
    assert frozen(row) - BUNDLED == needed - BUNDLED
    # … so a gateway-only package is there only when the row's own software (its
    # requirements, and the integration otelml's extra brings there) needs it.
    gateway_only = site.extra_names("gateway") - site.closure([Requirement("otelml")])
    assert "numpy" in gateway_only and "scipy" in gateway_only
    software = row_roots(row) + [Requirement(n) for n in site.extra_names(row.extras)]
    assert frozen(row) & gateway_only == site.closure(software) & gateway_only
    if name == "app-sdk":
        assert frozen(row) & gateway_only == set()


def send(row: Row, endpoint: str, protocol: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHON"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    command = [str(row.venv / "bin" / "python"), str(SEND), row.name]
    if row.launcher:  # the agent sets up the providers; otelml keeps them
        command.insert(0, str(row.venv / "bin" / row.launcher))
        env.update(
            OTEL_SERVICE_NAME="install-check",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
    run = subprocess.run(
        command, env=env, cwd=row.venv, capture_output=True, text=True, timeout=180, check=False
    )
    assert run.returncode == 0, run.stderr
    sent: dict[str, Any] = json.loads(run.stdout)
    return sent


@pytest.mark.parametrize("name", list(ROWS))
def test_row_sends_spans_the_gateway_counts_exactly(name: str) -> None:
    row = ROWS[name]
    installed_row(row)
    protocol = "http/protobuf" if name == "app-sdk" else "grpc"
    with running_gateway() as gateway:
        endpoint = gateway.http_url if protocol != "grpc" else f"http://{gateway.grpc_endpoint}"
        sent = send(row, endpoint, protocol)
        samples = {key: float(sample.value) for key, sample in gateway.samples().items()}

    assert Path(sent["otelml"]).is_relative_to(site_packages(row.venv))
    assert not [m for m in sent["heavy_modules"] if m.split(".")[0] in ("numpy", "pandas")]
    assert not [m for m in sent["heavy_modules"] if m.startswith("otelml.gateway")]
    if row.launcher is None:  # the agent itself imports what its instrumentors patch
        assert sent["heavy_modules"] == []
    expected_integrations = {"app-distro": ["fastapi"], "bentoml": ["bentoml"]}
    assert sent["integrations"] == expected_integrations.get(name.removesuffix("-floor"), [])

    def value(metric: str, **labels: str) -> float:
        model = {"model": "install", "model_version": name}
        return samples[(metric, frozenset({**model, **labels}.items()))]

    ages = [a for a in sent["ages"] if a is not None]
    assert value("otelml_feature_value_bucket", feature="age", le="+Inf") == len(ages)
    assert value("otelml_feature_missing_total", feature="age") == sent["ages"].count(None)
    for plan, count in Counter(sent["plans"]).items():
        assert value("otelml_feature_category_total", feature="plan", category=plan) == count
    assert value("otelml_prediction_value_bucket", output="prediction", le="+Inf") == len(
        sent["predictions"]
    )
    span = {("service", "install-check"), ("span_name", "predict")}
    calls = [v for (m, labels), v in samples.items() if m == CALLS and span <= labels]
    assert sum(calls) == sent["spans"]


def test_commands_without_their_extra_say_what_to_install() -> None:
    """In the app side alone, each command that needs more names its extra in one line."""
    row = ROWS["app-sdk"]
    installed_row(row)
    otelml = str(row.venv / "bin" / "otelml")
    commands = {
        "gateway": ([otelml, "gateway", "--check"], "yaml", "gateway"),
        "drift": (
            [otelml, "drift", "--reference", "r.json", "--current", "c.csv"],
            "numpy",
            "gateway",
        ),
        "profile": ([otelml, "profile", "build", "t.csv", "-o", "r.json"], "numpy", "profile"),
        "demo": ([otelml, "demo"], "numpy", "demo"),
        "proxy": (
            [otelml, "proxy", "--upstream", "http://127.0.0.1:1", "-c", "r.yaml"],
            "pydantic",
            "proxy",
        ),
    }
    for command, (argv, module, extra) in commands.items():
        run = subprocess.run(argv, cwd=row.venv, capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, (command, run.stderr)
        assert run.stderr == (
            f"otelml {command}: {module} is not installed; it comes with otelml[{extra}]: "
            f"pip install 'otelml[{extra}]'\n"
        )
    help_run = subprocess.run([otelml, "--help"], capture_output=True, text=True, timeout=60)
    assert help_run.returncode == 0 and "gateway" in help_run.stdout
