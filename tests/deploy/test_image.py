"""deploy/docker/Dockerfile, checked without a Docker engine (none runs here): its stages read
as the image must be built, the image's default config passes the gateway's check, and the build
stage's install commands, run as written in a clean virtual environment, install a gateway with
its C scanner compiled."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.deploy.helm import ROOT

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
IMAGE_CONFIG = ROOT / "deploy" / "docker" / "gateway.yaml"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for k, arguments in self.instructions if k == keyword]


def stages() -> list[Stage]:
    """The Dockerfile's stages: continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = arguments.partition(" AS ")
            found.append(Stage(base.strip(), name.strip() or None))
        elif found:
            found[-1].instructions.append((keyword, " ".join(arguments.split())))
    return found


def test_two_stages_compile_in_the_first_and_run_unprivileged_in_the_second() -> None:
    build, runtime = stages()
    assert build.name == "build" and build.base == runtime.base
    assert any("gcc" in run for run in build.all("RUN"))
    assert not any("apt-get install" in run or "gcc" in run for run in runtime.all("RUN"))
    assert runtime.all("COPY")[0] == "--from=build /opt/otelml /opt/otelml"
    assert runtime.all("USER") == ["10001:10001"]
    assert json.loads(runtime.all("ENTRYPOINT")[0]) == ["otelml", "gateway"]
    config = json.loads(runtime.all("CMD")[0])
    assert config == ["-c", "/etc/otelml/gateway.yaml"]
    assert "deploy/docker/gateway.yaml /etc/otelml/gateway.yaml" in runtime.all("COPY")
    assert json.loads(runtime.all("VOLUME")[0]) == ["/var/lib/otelml/queue"]
    assert runtime.all("EXPOSE") == ["4317 4318 9464"]
    labels = " ".join(runtime.all("LABEL"))
    for key in ("title", "description", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert "/readyz" in runtime.all("HEALTHCHECK")[0]
    # The user exists with that uid and owns the queue directory.
    assert any(
        "--uid 10001" in run and "/var/lib/otelml/queue" in run for run in runtime.all("RUN")
    )


def test_the_images_config_puts_the_queue_on_the_volume_and_passes_the_check(
    tmp_path: Path,
) -> None:
    config = yaml.safe_load(IMAGE_CONFIG.read_text())
    assert config["queue"]["directory"] == "/var/lib/otelml/queue"
    assert config["admin"]["endpoint"] == "0.0.0.0:9464"
    local = tmp_path / "gateway.yaml"
    local.write_text(IMAGE_CONFIG.read_text().replace("/var/lib/otelml/queue", str(tmp_path / "q")))
    result = subprocess.run(
        [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(local), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_the_build_stages_commands_install_a_gateway_in_a_clean_venv(tmp_path: Path) -> None:
    """What `docker build` would run in the build stage, here on the same Python, with the
    COPY'd files in a scratch directory and /opt/otelml a fresh path (no engine needed)."""
    (build, runtime) = stages()
    source = tmp_path / "src"
    for copy in build.all("COPY"):
        *sources, _ = copy.split()
        for name in sources:
            origin = ROOT / name
            if origin.is_dir():
                shutil.copytree(
                    origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.so")
                )
            else:
                source.mkdir(exist_ok=True)
                shutil.copy(origin, source / name)
    prefix = tmp_path / "opt-otelml"
    commands = [run for run in build.all("RUN") if "/opt/otelml" in run]
    assert len(commands) == 2  # the install and the scanner check
    for command in commands:
        local = command.replace("/opt/otelml", str(prefix)).replace(
            "python -m venv", f"{sys.executable} -m venv"
        )
        result = subprocess.run(
            ["sh", "-c", local],
            cwd=source,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        assert result.returncode == 0, f"{local}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    # The installed gateway (not this checkout) reads the image's config.
    config = tmp_path / "gateway.yaml"
    config.write_text(
        IMAGE_CONFIG.read_text().replace("/var/lib/otelml/queue", str(tmp_path / "q"))
    )
    check = subprocess.run(
        [str(prefix / "bin" / "otelml"), "gateway", "-c", str(config), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr
    located = subprocess.run(
        [
            str(prefix / "bin" / "python"),
            "-c",
            "import otelml, otelml.gateway.decode._otlpscan as s; print(s.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert located.stdout.startswith(str(prefix)) and located.stdout.strip().endswith(".so")
    assert runtime.base.startswith("python:")
