"""Training reference profiles: build, save, load and validate.

A profile summarises a model's training data (per-column bucket edges and counts) so
the monitoring gateway can bin live values on the same edges and compute drift.
"""

from otelml.profile.binning import bucket_index
from otelml.profile.build import build
from otelml.profile.categories import category_label
from otelml.profile.errors import ProfileError
from otelml.profile.io import load, read_table, save
from otelml.profile.model import (
    Calibration,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    Profile,
)

__all__ = [
    "Calibration",
    "CategoricalProfile",
    "FeatureProfile",
    "NumericProfile",
    "Profile",
    "ProfileError",
    "bucket_index",
    "build",
    "category_label",
    "load",
    "read_table",
    "save",
]
