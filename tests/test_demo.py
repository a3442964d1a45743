"""`otelml demo` end to end: every span sent is accepted and every row counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelml import demo, profile


def test_demo_runs_and_conserves_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.run(duration=6.0, workdir=str(tmp_path)) == 0
    reference = profile.load(tmp_path / "reference.json")
    assert reference.model == "churn" and reference.rows == 20_000
    out = capsys.readouterr().out
    assert "gateway accepted" in out
    # Age drifts upward in the second half: flagged, and its top bucket gains share.
    age = next(line for line in out.splitlines() if line.startswith("age ")).split()
    assert age[1].startswith("wasserstein=") and age[2] == "DRIFT"
    reference_share, live_share = float(age[4]), float(age[5])
    assert live_share > reference_share
    assert "performance over the joined ground truth: accuracy=" in out
