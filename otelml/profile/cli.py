"""The work of ``otelml profile build``.

Its arguments are defined in :mod:`otelml.cli`, which must import without numpy and pandas
(an app-side install has neither); this module is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys

from otelml.profile.build import build
from otelml.profile.errors import ProfileError
from otelml.profile.io import read_table, save


def run_build(args: argparse.Namespace) -> int:
    """Handle ``profile build``: 0 on success, 2 with ``error: ...`` on stderr otherwise."""
    try:
        profile = build(
            read_table(args.data),
            model=args.model,
            version=args.version,
            predictions=args.predictions,
            exclude=args.exclude,
            categorical=args.categorical,
            bins=args.bins,
            top_k=args.top_k,
            vocabulary_limit=args.vocabulary_limit,
            target=args.target,
            threshold=args.threshold,
        )
        save(profile, args.output)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    print(
        f"profile: {profile.rows} rows, {len(profile.features)} features, "
        f"{len(profile.predictions)} predictions -> {args.output}"
    )
    return 0
