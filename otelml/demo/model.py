"""The demo's churn model: synthetic customers and a fixed logistic scorer.

In the drift phase customers are older and on longer contracts — and, as in real life, the
world changed too: older customers now churn more than the model believes, so its accuracy
drops once the ground truth of that phase arrives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

MODEL, VERSION = "churn", "3"
#: The service's response field that `otelml.instrument.fastapi` records as the output.
OUTPUT = "churn"
CONTRACTS = ["month-to-month", "one-year", "two-year"]
COUNTRIES = ["DE", "FR", "US", "GB", "ES"]
FEATURES = ["age", "tenure_months", "monthly_charges", "support_calls", "contract", "country"]


def customers(rng: np.random.Generator, rows: int, drifted: bool) -> pd.DataFrame:
    """Model inputs; `drifted` shifts age up and the contract mix."""
    contract_p = [0.2, 0.3, 0.5] if drifted else [0.55, 0.25, 0.2]
    return pd.DataFrame(
        {
            "age": rng.normal(55 if drifted else 40, 11, rows).round(1),
            "tenure_months": rng.exponential(24, rows).round(),
            "monthly_charges": rng.normal(70, 20, rows).round(2),
            "support_calls": rng.poisson(1.5, rows).astype(float),
            "contract": rng.choice(CONTRACTS, rows, p=contract_p),
            "country": rng.choice(COUNTRIES, rows, p=[0.3, 0.25, 0.2, 0.15, 0.1]),
        }
    )


def _logit(inputs: pd.DataFrame) -> np.ndarray:
    return np.asarray(
        -1.0
        - 0.03 * (inputs["age"] - 40)
        - 0.04 * inputs["tenure_months"]
        + 0.02 * (inputs["monthly_charges"] - 70)
        + 0.4 * inputs["support_calls"]
        + inputs["contract"].map({"month-to-month": 1.2, "one-year": 0.0, "two-year": -1.0}),
        dtype=np.float64,
    )


def predict(inputs: pd.DataFrame) -> np.ndarray:
    """The 'trained' scorer: probability of churn."""
    return np.asarray(1.0 / (1.0 + np.exp(-_logit(inputs))), dtype=np.float64)


def churned(rng: np.random.Generator, inputs: pd.DataFrame, drifted: bool) -> np.ndarray:
    """What really happened: the model's odds, except that in the drifted world older
    customers churn far more than it thinks."""
    logit = _logit(inputs) + (0.12 * (inputs["age"].to_numpy() - 40) if drifted else 0.0)
    return np.asarray(rng.uniform(size=len(inputs)) < 1.0 / (1.0 + np.exp(-logit)), dtype=int)
