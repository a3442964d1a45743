"""Config: typed, unknown keys rejected, ${ENV} substituted, every error with its YAML path."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from otelml import config
from otelml.errors import ConfigError
from otelml.gateway.exporters.forwarding import revealed


def test_defaults_match_the_documented_ports() -> None:
    loaded = config.load()
    assert loaded.receivers.otlp.grpc is not None and loaded.receivers.otlp.grpc.port == 4317
    assert loaded.receivers.otlp.http is not None and loaded.receivers.otlp.http.port == 4318
    assert loaded.admin.port == 9464
    assert loaded.limits.max_series == 10_000
    assert loaded.limits.max_request_bytes == 16 * 1024 * 1024


def test_sizes_and_durations_parse() -> None:
    assert config.parse_size("16MiB") == 16 * 1024**2
    assert config.parse_size("1GiB") == 1024**3
    assert config.parse_size("500kB") == 500_000
    assert config.parse_size(42) == 42
    assert config.parse_duration("5m") == 300.0
    assert config.parse_duration("250ms") == 0.25
    assert config.parse_duration(30) == 30.0
    with pytest.raises(ValueError, match="size"):
        config.parse_size("lots")
    with pytest.raises(ValueError, match="duration"):
        config.parse_duration("soon")


def test_env_substitution_with_defaults() -> None:
    env = {"TOKEN": "s3cret", "EMPTY": ""}
    assert config.substitute_env("${TOKEN}", env) == "s3cret"
    assert config.substitute_env("${MISSING:-fallback}", env) == "fallback"
    assert config.substitute_env("${EMPTY:-fallback}", env) == "fallback"
    assert config.substitute_env("${EMPTY}", env) == ""
    with pytest.raises(ConfigError, match=r"\$\{NOPE\} is not set"):
        config.substitute_env("${NOPE}", env)


def test_every_error_is_reported_with_its_yaml_path(tmp_path: Path) -> None:
    file = tmp_path / "gateway.yaml"
    file.write_text(
        "receivers:\n  otlp:\n    grpc: {endpoint: 'nohostport'}\n"
        "limits: {max_series: 0, max_request_bytes: huge}\n"
        "models:\n  - name: churn\n    window: 1m\n    step: 5m\n    colour: red\n"
        "surprise: 1\n"
    )
    with pytest.raises(ConfigError) as error:
        config.load(file)
    problems = error.value.problems
    assert "receivers.otlp.grpc.endpoint: expected host:port, got 'nohostport'" in problems
    assert "limits.max_series: Input should be greater than 0" in problems
    assert any(p.startswith("limits.max_request_bytes: expected a size") for p in problems)
    assert "models.0.colour: unknown key" in problems
    assert "surprise: unknown key" in problems


def test_semantic_checks_after_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        config.parse(
            {
                "models": [
                    {"name": "a", "window": "1m", "step": "5m"},
                    {"name": "a", "reference": "missing.json"},
                    {"name": "a"},
                ]
            },
            base_dir=tmp_path,
        )
    assert error.value.problems == [
        "models.0.step: must not be longer than window",
        "models.1: duplicate model 'a' version None",
        f"models.1.reference: file not found: {tmp_path / 'missing.json'}",
        "models.2: duplicate model 'a' version None",
    ]


def test_env_values_reach_the_typed_config(tmp_path: Path) -> None:
    file = tmp_path / "gateway.yaml"
    file.write_text("auth: {bearer_token: '${TOKEN:-}'}\nlimits: {max_series: ${SERIES:-7}}\n")
    loaded = config.load(file, environ={"TOKEN": "abc"})
    assert loaded.auth.bearer_token.get_secret_value() == "abc"
    assert loaded.limits.max_series == 7
    assert "abc" not in repr(loaded)  # secrets stay out of logs and dumps


def test_exporter_headers_are_secrets_sent_as_written(tmp_path: Path) -> None:
    file = tmp_path / "gateway.yaml"
    file.write_text(
        "exporters:\n"
        "  traces: {endpoint: 'http://tempo:4318', headers: {Authorization: 'Basic ${KEY}'}}\n"
        "  metrics: {remote_write: 'http://prom/api/v1/write', headers: {X-Scope-OrgID: t1}}\n"
    )
    loaded = config.load(file, environ={"KEY": "c2VjcmV0"})
    assert "c2VjcmV0" not in repr(loaded) and "c2VjcmV0" not in str(loaded.model_dump())
    assert loaded.exporters.traces is not None and loaded.exporters.metrics is not None
    assert revealed(loaded.exporters.traces.headers) == {"Authorization": "Basic c2VjcmV0"}
    assert revealed(loaded.exporters.metrics.headers) == {"X-Scope-OrgID": "t1"}


def test_cli_exits_2_before_binding_any_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    file = tmp_path / "gateway.yaml"
    file.write_text(
        f"admin: {{endpoint: '127.0.0.1:{port}'}}\nmodels:\n  - name: m\n    reference: nope.json\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "models.0.reference: file not found" in result.stderr
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # still free: nothing was bound


def test_cli_check_accepts_a_valid_config(tmp_path: Path) -> None:
    file = tmp_path / "gateway.yaml"
    file.write_text("limits: {max_series: 100}\n")
    result = subprocess.run(
        [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(file), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "configuration ok"


def test_an_exporter_ca_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        config.parse(
            {"exporters": {"traces": {"endpoint": "https://t:4317", "ca_file": "nope.pem"}}}
        )
    assert error.value.problems == ["exporters.traces.ca_file: file not found: nope.pem"]
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    parsed = config.parse({"exporters": {"metrics": {"remote_write": "https://m/", "ca_file": ca}}})
    assert parsed.exporters.metrics is not None and parsed.exporters.metrics.ca_file == ca


def test_otlp_exporters_default_to_http_and_say_what_a_grpc_endpoint_needs() -> None:
    parsed = config.parse({"exporters": {"traces": {"endpoint": "http://tempo:4318"}}})
    assert parsed.exporters.traces is not None
    assert parsed.exporters.traces.protocol == "http/protobuf"
    with pytest.raises(ConfigError) as error:
        config.parse({"exporters": {"traces": {"endpoint": "tempo:4317"}}})
    [problem] = error.value.problems
    assert problem.startswith("exporters.traces: ")
    assert "'tempo:4317' is not an http:// or https:// URL" in problem
    assert "set protocol: grpc" in problem
    grpc = config.parse({"exporters": {"traces": {"endpoint": "tempo:4317", "protocol": "grpc"}}})
    assert grpc.exporters.traces is not None and grpc.exporters.traces.protocol == "grpc"
    with pytest.raises(ConfigError) as error:
        config.parse({"exporters": {"metrics": {"remote_write": "prometheus:9090"}}})
    assert error.value.problems == [
        "exporters.metrics.remote_write: 'prometheus:9090' is not an http:// or https:// URL"
    ]
