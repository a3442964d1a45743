"""`otelml drift` on files: estimated performance per window, realized beside it with --target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from otelml import profile
from otelml.cli import main
from otelml.gateway.drift.batch_performance import assess_performance

ROWS = 4000


def _frame(rng: np.random.Generator, mean: float, start: str) -> pd.DataFrame:
    x = rng.normal(mean, 1.0, ROWS)
    p = 1 / (1 + np.exp(-2.0 * x))
    return pd.DataFrame(
        {
            "time": pd.date_range(start, periods=ROWS, freq="s"),
            "x": x,
            "score": p,
            "label": (rng.random(ROWS) < p).astype(int),
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = _frame(rng, 0.0, "2026-01-01")
    built = profile.build(reference.drop(columns="time"), predictions=["score"], target="label")
    path = tmp_path / "reference.json"
    profile.save(built, path)
    current = pd.concat(
        [_frame(rng, 0.0, "2026-02-01"), _frame(rng, 1.0, "2026-02-02")], ignore_index=True
    )
    data = tmp_path / "current.csv"
    current.to_csv(data, index=False)
    return path, data, current


def test_realized_is_sklearns_and_the_estimate_is_close_under_covariate_shift(
    files: tuple[Path, Path, pd.DataFrame],
) -> None:
    path, _, current = files
    results = assess_performance(
        profile.load(path), current, target="label", time_column="time", window="1D"
    )
    assert [r.window[:10] for r in results] == ["2026-02-01", "2026-02-02"]
    for result, (_, part) in zip(
        results, current.groupby(current["time"].dt.floor("1D")), strict=True
    ):
        y, p = part["label"].to_numpy() == 1, part["score"].to_numpy()
        assert result.realized is not None
        assert result.realized == pytest.approx(
            {
                "accuracy": accuracy_score(y, p > 0.5),
                "precision": precision_score(y, p > 0.5),
                "recall": recall_score(y, p > 0.5),
                "f1": f1_score(y, p > 0.5),
                "roc_auc": roc_auc_score(y, p),
            }
        )
        for metric in ("accuracy", "f1"):
            assert abs(result.estimated[metric] - result.realized[metric]) < 0.03


def test_cli_estimates_without_target_and_adds_realized_with_it(
    files: tuple[Path, Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, data, _ = files
    out = tmp_path / "out.json"
    args = ["drift", "--reference", str(path), "--current", str(data)]
    assert main([*args, "--time-column", "time", "--window", "1D", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert [p["realized"] for p in document["performance"]] == [None, None]
    assert len(document["drift"]) >= 2
    page = tmp_path / "out.html"
    assert main([*args, "--target", "label", "--json", str(out), "--html", str(page)]) == 0
    assert "<h2>Performance</h2>" in page.read_text() and "roc_auc" in page.read_text()
    (whole,) = json.loads(out.read_text())["performance"]
    assert whole["rows"] == 2 * ROWS and whole["realized"]["accuracy"] > 0.7
    assert "roc_auc" in capsys.readouterr().out
    assert main([*args, "--target", "nope"]) == 2
