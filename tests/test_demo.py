"""`otelml demo` end to end: every span sent is accepted and every row counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelml import demo, profile


def test_demo_runs_and_conserves_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.run(duration=3.0, workdir=str(tmp_path)) == 0
    reference = profile.load(tmp_path / "reference.json")
    assert reference.model == "churn" and reference.rows == 20_000
    out = capsys.readouterr().out
    assert "gateway accepted" in out
    # The age feature drifts upward in the second half: its top bucket gains share.
    age_line = next(line for line in out.splitlines() if line.startswith("age "))
    reference_share, live_share = (float(x) for x in age_line.split()[2:4])
    assert live_share > reference_share
