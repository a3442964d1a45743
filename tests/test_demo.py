"""`otelml demo` as a user runs it: a process that reaches drift, serves the UI, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.prometheus_server import Prometheus, free_port, prometheus_binary


def _children(pid: int) -> set[int]:
    """Every live descendant of a process (from /proc)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found |= {int(entry.name)} | _children(int(entry.name))
    return found


def _demo_dirs() -> set[str]:
    return {p.name for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("otelml-demo-*")}


@pytest.mark.slow
def test_demo_reaches_drift_serves_it_and_stops_cleanly_on_ctrl_c() -> None:
    prometheus_binary()
    admin, prometheus = free_port(), free_port()
    before = _demo_dirs()
    command = [sys.executable, "-m", "otelml.cli", "demo", "--duration", "12"]
    command += ["--grpc-port", str(free_port()), "--http-port", str(free_port())]
    command += ["--admin-port", str(admin), "--with-prometheus"]
    command += ["--prometheus-port", str(prometheus)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        drifting: set[str] = set()
        while not {"age", "contract"} <= drifting:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"no drift shown: {drifting}"
            time.sleep(1)
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{admin}/api/v1/model",
                    params={"name": "churn", "version": "3"},
                    timeout=5,
                )
            except httpx.HTTPError:
                continue
            if answer.status_code == 200:
                drifting = {s["name"] for s in answer.json()["series"] if s["detected"]}
        # The UI of the running demo serves the page and says the same.
        page = httpx.get(f"http://127.0.0.1:{admin}/ui/", timeout=5)
        assert page.status_code == 200 and "/ui/static/app.js" in page.text
        models = httpx.get(f"http://127.0.0.1:{admin}/api/v1/models", timeout=5).json()
        assert {"age", "contract"} <= set(models["models"][0]["drifting"])
        # Prometheus scrapes the gateway, exemplars (trace ids) included.
        scraper = Prometheus(f"http://127.0.0.1:{prometheus}")
        scraper.wait_for(
            'otelml_drift_detected{feature="age"}',
            lambda result: result and float(result[0]["value"][1]) == 1.0,
            timeout=60,
        )
        now = time.time()
        exemplars = scraper.query_exemplars(
            'otelml_feature_value_bucket{feature="age"}', now - 300, now
        )
        assert any(len(e["labels"]["trace_id"]) == 32 for s in exemplars for e in s["exemplars"])
        children = _children(process.pid)
        assert len(children) >= 2, "the model service and prometheus run in their own processes"
        process.send_signal(signal.SIGINT)  # mid-traffic, as a user's Ctrl-C
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "stopping (Ctrl-C)" in out
    assert "drift phase" in out
    assert not any(Path(f"/proc/{pid}").exists() for pid in children), "a process was left"
    assert _demo_dirs() <= before, "the temporary directory was left"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=2)


@pytest.mark.slow
def test_demo_exit_prints_the_summary_on_the_reference_bins(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "otelml.cli", "demo", "--duration", "10", "--exit"]
    command += ["--workdir", str(tmp_path)]
    for option in ("--grpc-port", "--http-port", "--admin-port"):
        command += [option, str(free_port())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    age = next(line for line in lines if line.startswith("age ")).split()
    assert age[1].startswith("wasserstein=") and age[3] == "DRIFT"
    # The bucket is written out as a range, and the shares are of the same window's footing.
    assert age[5] == "<" and age[6] == "age" and age[7] == "≤"
    reference_share, current_share = float(age[9].rstrip("%")), float(age[10].rstrip("%"))
    assert current_share > reference_share
    assert age[11] == "trace" and len(age[12]) == 32
    performance = next(line for line in lines if line.startswith("performance (churn)"))
    assert " labels joined in the last " in performance and "before the drift" in performance
