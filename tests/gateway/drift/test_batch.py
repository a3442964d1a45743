"""`otelml drift` on files: the same tests as the gateway, per time window, as table/JSON/HTML."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from otelml import profile
from otelml.cli import main
from otelml.gateway.drift import scores
from otelml.gateway.drift.batch import assess, bin_column


def _frame(rng: np.random.Generator, rows: int, shifted: bool) -> pd.DataFrame:
    data = {f"n{i}": rng.normal(i, 1 + i, rows) for i in range(6)}
    if shifted:
        data["n2"] = data["n2"] + 2.0
    p = [0.1, 0.2, 0.3, 0.4] if shifted else [0.4, 0.3, 0.2, 0.1]
    data["c0"] = rng.choice(list("abcd"), rows, p=[0.4, 0.3, 0.2, 0.1])
    data["c1"] = rng.choice(list("abcd"), rows, p=p)
    return pd.DataFrame(data)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(21)
    reference = profile.build(_frame(rng, 5000, False), model="m")
    reference_path = tmp_path / "reference.json"
    profile.save(reference, reference_path)
    current = pd.concat([_frame(rng, 3000, False), _frame(rng, 3000, True)], ignore_index=True)
    # Hour 0: like the training data; hour 1: n2 and c1 shifted.
    seconds = pd.to_timedelta(np.r_[np.arange(3000), 3600 + np.arange(3000)], unit="s")
    current["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + seconds
    current_path = tmp_path / "current.parquet"
    current.to_parquet(current_path)
    return reference_path, current_path


def test_cli_flags_the_shifted_columns_per_window(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = files
    out_json, out_html = tmp_path / "drift.json", tmp_path / "drift.html"
    code = main(
        [
            "drift",
            "--reference",
            str(reference),
            "--current",
            str(current),
            "--time-column",
            "ts",
            "--window",
            "1h",
            "--json",
            str(out_json),
            "--html",
            str(out_html),
            "--fail-on-drift",
        ]
    )
    assert code == 1  # something drifted
    results = json.loads(out_json.read_text())
    windows = sorted({r["window"] for r in results})
    assert len(windows) == 2
    first = {r["column"] for r in results if r["window"] == windows[0] and r["drift"]}
    second = {r["column"] for r in results if r["window"] == windows[1] and r["drift"]}
    assert first == set()
    assert second == {"n2", "c1"}
    assert "DRIFT" in capsys.readouterr().out
    page = out_html.read_text()
    assert page.count("<tr") == len(results) + 1 and 'class="drift"' in page


def test_whole_file_scores_equal_the_score_functions(files: tuple[Path, Path]) -> None:
    reference_path, current_path = files
    reference = profile.load(reference_path)
    current = pd.read_parquet(current_path)
    results = {r.column: r for r in assess(reference, current)}
    n2 = reference.features["n2"]
    counts, missing = bin_column(n2, current["n2"])
    assert missing == 0 and counts.sum() == 6000
    expected = scores.wasserstein_normed(
        n2.counts,
        counts,
        scores.bin_points(n2.edges, n2.bucket_means),  # type: ignore[union-attr]
        n2.std,  # type: ignore[union-attr]
    )[0]
    assert results["n2"].method == "wasserstein"
    assert results["n2"].score == pytest.approx(expected)
    assert results["c1"].method == "js"
    assert results["n2"].drift is True and results["n0"].drift is False


def test_categorical_binning_sends_unknown_values_to_other() -> None:
    reference = profile.build(pd.DataFrame({"c": ["a", "a", "b", "c"]}), top_k=2)
    feature = reference.features["c"]
    counts, missing = bin_column(feature, pd.Series(["a", "zzz", None, "b", "c"]))
    assert list(feature.categories) == ["a", "b"]  # type: ignore[union-attr]
    assert counts.tolist() == [1, 1, 2] and missing == 1


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "--reference", str(tmp_path / "no.json"), "--current", "x.csv"]) == 2
    assert "otelml drift:" in capsys.readouterr().err
