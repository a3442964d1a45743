"""Requests drawn from the training data, and the drift phase's shift of them.

Rows are sampled with replacement from `training.csv` (what train.py wrote), so a normal phase
has the training distribution exactly. The drift phase moves two features and nothing else:
`bmi` shifted by one training standard deviation, and the `sex` mix tilted (a share of rows
set to 2). Each changes only its own column, so no other feature's distribution moves.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
CATEGORICAL = frozenset({"sex"})
#: The training data's true value: posted later as ground truth.
TARGET = "target"
#: The model output that ground truth is for.
OUTPUT = "progression"
#: What the drift phase moves, and how.
MOVED = ("bmi", "sex")
BMI_SHIFT_STDS = 1.0
SEX_TILT = 0.65  # share of rows set to sex 2: 47 % → 81 %


@dataclass(frozen=True)
class Row:
    features: dict[str, float | int]
    target: float


class Traffic:
    """Rows of the training data, unchanged or drifted."""

    def __init__(self, training_csv: Path, seed: int | None = None) -> None:
        with training_csv.open(newline="") as file:
            self.rows = [_parse(record) for record in csv.DictReader(file)]
        if not self.rows:
            raise ValueError(f"{training_csv}: no rows")
        bmi = [float(r.features["bmi"]) for r in self.rows]
        mean = sum(bmi) / len(bmi)
        std = (sum((v - mean) ** 2 for v in bmi) / (len(bmi) - 1)) ** 0.5
        self.bmi_shift = round(BMI_SHIFT_STDS * std, 2)
        self.random = random.Random(seed)

    def draw(self, count: int, drifted: bool) -> list[Row]:
        rows = self.random.choices(self.rows, k=count)
        return [self._drift(row) for row in rows] if drifted else rows

    def _drift(self, row: Row) -> Row:
        features = dict(row.features)
        features["bmi"] = round(float(features["bmi"]) + self.bmi_shift, 2)
        if self.random.random() < SEX_TILT:
            features["sex"] = 2
        return Row(features, row.target)


def _parse(record: dict[str, str]) -> Row:
    features: dict[str, float | int] = {
        name: int(record[name]) if name in CATEGORICAL else float(record[name]) for name in FEATURES
    }
    return Row(features, float(record[TARGET]))
