"""The app side's install matrix: fresh environments that `pip install` the built wheel.

Each row is a new virtual environment with the pip its Python ships (what a new user has),
into which the wheel built from this checkout is installed beside the row's own
requirements, as a user would type it. Nothing is put on a path by hand. For each row this
prints, and keeps in `<venv>/otelml-install.json`, how long pip took to resolve (a dry run)
and to install, what it installed, and what otelml added; `pip freeze` goes to
`<venv>/freeze.txt`. `tests/install/test_matrix.py` then checks each row.

    python -m tests.install.matrix [ROW ...]       (`make app-venvs`; default: every row)

A row whose inputs (requirements, the wheel's metadata, this file, the Python) are unchanged
keeps its environment and only gets the new wheel; a fresh clone (CI) makes every row anew.
Downloads are cached in pip's own cache (`OTELML_PIP_CACHE`, default `~/.cache/pip`).
"""

from __future__ import annotations

import argparse
import ensurepip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "bentoml_service"
WHEEL_DIR = ROOT / "build" / "app-wheel"
RECORD = "otelml-install.json"
FREEZE = "freeze.txt"


@dataclass(frozen=True)
class Row:
    """One supported combination: the row's requirements, and otelml's extras in it."""

    name: str
    requirements: Path
    extras: str = ""
    #: the command that starts the app, when it is not the venv's python itself
    launcher: str | None = None

    @property
    def venv(self) -> Path:
        return ROOT / f".venv-{self.name}"


ROWS = {
    row.name: row
    for row in (
        Row("app-sdk", HERE / "requirements" / "sdk-current.txt"),
        Row("app-sdk-floor", HERE / "requirements" / "sdk-floor.txt"),
        Row(
            "app-distro",
            HERE / "requirements" / "distro.txt",
            extras="fastapi",
            launcher="opentelemetry-instrument",
        ),
        Row("bentoml", EXAMPLE / "requirements.txt"),
        Row("bentoml-floor", EXAMPLE / "requirements-floor.txt"),
    )
}


def build_wheel() -> Path:
    """The wheel of this checkout (a stale `build/` would pack files that no longer exist)."""
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(WHEEL_DIR)],
        check=True,
        timeout=600,
    )
    (wheel,) = WHEEL_DIR.glob("otelml-*.whl")
    return wheel


def wheel_metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name).decode()


def inputs_digest(row: Row, wheel: Path, python: str) -> str:
    version = subprocess.run(
        [python, "-c", "import sys, ensurepip; print(sys.version, ensurepip.version())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    parts = [row.requirements.read_text(), row.extras, wheel_metadata(wheel), version]
    parts.append(Path(__file__).read_text())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def pip(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cache = os.environ.get("OTELML_PIP_CACHE") or str(Path.home() / ".cache" / "pip")
    command = [str(venv / "bin" / "pip"), *args, "--cache-dir", cache]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=900)


def timed(venv: Path, *args: str) -> float:
    start = time.monotonic()
    try:
        pip(venv, *args)
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"{venv.name}: pip {' '.join(args)} failed:\n{error.stderr}") from error
    return time.monotonic() - start


def site_packages(venv: Path) -> Path:
    (site,) = (venv / "lib").glob("python*/site-packages")
    return site


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def import_seconds(venv: Path) -> float:
    """Median wall time of `import otelml.instrument` in a new process (5 runs)."""
    code = "import time; t = time.perf_counter(); import otelml.instrument; "
    code += "print(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run(
                [str(venv / "bin" / "python"), "-c", code],
                check=True,
                capture_output=True,
                text=True,
                cwd=venv,  # not the checkout: otelml must come from site-packages
            ).stdout
        )
        for _ in range(5)
    ]
    return statistics.median(runs)


def make(row: Row, wheel: Path, python: str) -> dict[str, object]:
    """A fresh environment for `row`, or the kept one with the new wheel in it."""
    digest = inputs_digest(row, wheel, python)
    record_path = row.venv / RECORD
    if record_path.exists():
        record: dict[str, object] = json.loads(record_path.read_text())
        if record.get("inputs") == digest:
            pip(row.venv, "install", "-q", "--no-deps", "--force-reinstall", str(wheel))
            record["kept"] = True
            return record
    shutil.rmtree(row.venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(row.venv)], check=True, timeout=300)
    bare = directory_bytes(site_packages(row.venv))
    target = f"{wheel}[{row.extras}]" if row.extras else str(wheel)
    wanted = [target, "-r", str(row.requirements)]
    report = row.venv / "pip-report.json"
    resolve = timed(row.venv, "install", "-q", "--dry-run", "--report", str(report), *wanted)
    install = timed(row.venv, "install", "-q", *wanted)
    resolved = json.loads(report.read_text())["install"]
    freeze = pip(row.venv, "freeze", "--all").stdout
    (row.venv / FREEZE).write_text(freeze)
    record = {
        "row": row.name,
        "inputs": digest,
        "pip": pip(row.venv, "--version").stdout.split()[1],
        "ensurepip": ensurepip.version(),
        "resolve_seconds": round(resolve, 2),
        "install_seconds": round(install, 2),
        "packages": {i["metadata"]["name"]: i["metadata"]["version"] for i in resolved},
        "site_packages_bytes": directory_bytes(site_packages(row.venv)) - bare,
        "import_seconds": round(import_seconds(row.venv), 4),
    }
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True))
    record["kept"] = False
    return record


def summary(record: dict[str, object]) -> str:
    packages = record["packages"]
    assert isinstance(packages, dict)
    sdk = packages.get("opentelemetry-sdk", "?")
    megabytes = float(str(record["site_packages_bytes"])) / 1e6
    how = "kept (inputs unchanged), new wheel; made with" if record["kept"] else "fresh:"
    return (
        f"{record['row']}: {how} pip {record['pip']} resolved in {record['resolve_seconds']} s, "
        f"installed {len(packages)} packages ({megabytes:.0f} MB) in "
        f"{record['install_seconds']} s; opentelemetry-sdk {sdk}; "
        f"import otelml.instrument {float(str(record['import_seconds'])) * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", metavar="ROW", help=f"default: all of {', '.join(ROWS)}")
    parser.add_argument("--python", default=os.environ.get("PYTHON", "python3"))
    args = parser.parse_args(argv)
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        parser.error(f"no such row: {', '.join(sorted(unknown))}")
    wheel = build_wheel()
    print(f"wheel: {wheel.relative_to(ROOT)} ({wheel.stat().st_size / 1e3:.0f} kB)", flush=True)
    for name in args.rows or ROWS:
        print(summary(make(ROWS[name], wheel, args.python)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
