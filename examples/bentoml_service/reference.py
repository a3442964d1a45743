"""Write the iris reference profile the gateway compares live traffic with.

Usage (otelml's own environment, which has the profile builder): python reference.py iris.json
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.datasets import load_iris

from otelml import profile

#: As in service.py (which needs BentoML, so it is not imported here).
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_profile() -> profile.Profile:
    """The training data's profile: the four measurements and the species as the output."""
    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=dict(zip(iris.feature_names, FEATURES, strict=True)))
    frame["species"] = np.asarray(iris.target_names)[frame.pop("target")]
    return profile.build(frame, model="iris", version="1", predictions=["species"])


if __name__ == "__main__":
    profile.save(iris_profile(), sys.argv[1])
