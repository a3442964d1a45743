"""``profile build`` wired into a fresh parser, as the main CLI will do."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from otelml.cli import add_profile_commands
from otelml.profile import CategoricalProfile, NumericProfile, load


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="otelml")
    add_profile_commands(main.add_subparsers(dest="command", required=True))
    return main


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    path = tmp_path / "train.csv"
    pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "age": [21, 35, 35, 48, 52, 70],
            "tier": [1, 2, 2, 3, 1, 1],
            "plan": ["basic", "pro", "basic", None, "basic", "pro"],
            "score": [0.1, 0.4, 0.35, 0.8, 0.9, 0.2],
        }
    ).to_csv(path, index=False)
    return path


def test_build_writes_a_profile(
    train_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "profile.json"
    code = run(
        [
            "profile",
            "build",
            str(train_csv),
            "-o",
            str(out),
            "--model",
            "churn",
            "--version",
            "2",
            "--prediction",
            "score",
            "--exclude",
            "id",
            "--categorical",
            "tier",
            "--bins",
            "2",
            "--top-k",
            "1",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out == f"profile: 6 rows, 3 features, 1 predictions -> {out}\n"
    assert captured.err == ""
    profile = load(out)
    assert (profile.model, profile.version, profile.rows) == ("churn", "2", 6)
    assert list(profile.features) == ["age", "tier", "plan"]
    assert list(profile.predictions) == ["score"]
    age, tier, plan = (profile.features[n] for n in ("age", "tier", "plan"))
    assert isinstance(age, NumericProfile)
    assert (age.edges, age.counts) == ((21.0, 41.5, 70.0), (1, 2, 3, 0))
    assert isinstance(tier, CategoricalProfile)
    assert (tier.categories, tier.counts, tier.vocabulary) == (("1",), (3, 3), ("1", "2", "3"))
    assert isinstance(plan, CategoricalProfile)
    assert (plan.categories, plan.counts, plan.missing) == (("basic",), (3, 2), 1)


def test_defaults() -> None:
    args = parser().parse_args(["profile", "build", "t.parquet", "-o", "p.json"])
    assert (args.data, args.output, args.model, args.version) == ("t.parquet", "p.json", None, None)
    assert (args.predictions, args.exclude, args.categorical) == ([], [], [])
    assert (args.bins, args.top_k, args.vocabulary_limit) == (10, 20, 1000)


def test_missing_column_exits_2(
    train_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "profile.json"
    code = run(["profile", "build", str(train_csv), "-o", str(out), "--prediction", "churned"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err == "error: prediction: no such column: 'churned'\n"
    assert captured.out == ""
    assert not out.exists()


def test_missing_data_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["profile", "build", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "p.json")])
    assert code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.csv'}: no such file\n"


def test_unwritable_output_exits_2(
    train_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing-dir" / "p.json"
    assert run(["profile", "build", str(train_csv), "-o", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot write {out}: ")


def test_bad_option_value_exits_2(
    train_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(["profile", "build", str(train_csv), "-o", str(tmp_path / "p.json"), "--bins", "0"])
        == 2
    )
    assert capsys.readouterr().err == "error: bins must be >= 1, got 0\n"


@pytest.mark.parametrize("argv", [["profile"], ["profile", "build", "t.csv"]])
def test_incomplete_command_lines_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(argv)
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err
