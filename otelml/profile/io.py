"""Reading and writing: profiles as versioned JSON files, training tables as csv/parquet."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from otelml.profile.errors import ProfileError
from otelml.profile.model import FeatureProfile, Profile
from otelml.profile.schema import FORMAT_NAME, parse

StrPath = str | os.PathLike[str]


def to_dict(profile: Profile) -> dict[str, Any]:
    """The JSON document of ``profile`` (lists, not tuples; column names only as keys)."""
    return {
        "format": FORMAT_NAME,
        "format_version": profile.format_version,
        "model": profile.model,
        "version": profile.version,
        "rows": profile.rows,
        "created": profile.created,
        "features": {name: _column_dict(c) for name, c in profile.features.items()},
        "predictions": {name: _column_dict(c) for name, c in profile.predictions.items()},
        **(
            {
                "calibration": {
                    name: {
                        "target": c.target,
                        "threshold": c.threshold,
                        "positive_rate": list(c.positive_rate),
                    }
                    for name, c in profile.calibration.items()
                }
            }
            if profile.calibration
            else {}
        ),
    }


def _column_dict(column: FeatureProfile) -> dict[str, Any]:
    fields = asdict(column)
    del fields["name"]
    return {
        "kind": fields.pop("kind"),
        **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()},
    }


def from_dict(data: object) -> Profile:
    """Validate a decoded JSON document; :class:`ProfileError` names every bad JSON path."""
    return parse(data)


def save(profile: Profile, path: StrPath) -> None:
    """Write ``profile`` as JSON, atomically, after checking that :func:`load` will accept it.

    The atomic replace matters because the gateway may re-read the file at any time.
    """
    data = to_dict(profile)
    parse(data)
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    target = Path(path)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def load(path: StrPath) -> Profile:
    """Read and fully validate a profile file; errors read ``<file>: <json path>: <problem>``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{file}: cannot read profile: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{file}: not valid JSON: {exc}") from None
    try:
        return parse(data)
    except ProfileError as exc:
        raise ProfileError(f"{file}: {exc}") from None


def read_table(path: StrPath) -> pd.DataFrame:
    """Read a training table from ``.csv`` (pandas defaults) or ``.parquet`` (pyarrow)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ProfileError(
            f"{file}: unsupported table format {suffix or '(no suffix)'!r}, "
            "expected .csv or .parquet"
        )
    if not file.is_file():
        raise ProfileError(f"{file}: no such file")
    try:
        if suffix == ".csv":
            return pd.read_csv(file)
        return pd.read_parquet(file, engine="pyarrow")
    except (ValueError, OSError) as exc:
        raise ProfileError(f"{file}: cannot read table: {exc}") from exc
