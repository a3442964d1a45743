"""``profile`` subcommands, plugged into the main ``otelml`` command line."""

from __future__ import annotations

import argparse
import sys

from otelml.profile.build import build
from otelml.profile.errors import ProfileError
from otelml.profile.io import read_table, save


def add_profile_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``profile build``; each leaf parser sets ``func(args) -> exit code``."""
    profile = subparsers.add_parser(
        "profile",
        help="training reference profiles",
        description="Summarise training data so the gateway can compute drift against it.",
    )
    commands = profile.add_subparsers(dest="profile_command", metavar="COMMAND", required=True)
    cmd = commands.add_parser(
        "build",
        help="build a reference profile from a training table",
        description="Build a reference profile (JSON) from a .csv or .parquet training table.",
    )
    cmd.add_argument("data", metavar="DATA", help="training table, .csv or .parquet")
    cmd.add_argument("-o", "--output", required=True, metavar="OUT", help="profile JSON to write")
    cmd.add_argument("--model", help="model name recorded in the profile")
    cmd.add_argument("--version", help="model version recorded in the profile")
    cmd.add_argument(
        "--prediction",
        dest="predictions",
        action="append",
        default=[],
        metavar="COL",
        help="model output column (repeatable)",
    )
    cmd.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="COL",
        help="column to leave out, e.g. ids or timestamps (repeatable)",
    )
    cmd.add_argument(
        "--categorical",
        action="append",
        default=[],
        metavar="COL",
        help="profile this numeric column as categorical (repeatable)",
    )
    cmd.add_argument(
        "--bins",
        type=int,
        default=10,
        metavar="N",
        help="equal-frequency buckets per numeric column (default: 10)",
    )
    cmd.add_argument(
        "--top-k",
        type=int,
        default=20,
        metavar="K",
        help="categories kept per categorical column (default: 20)",
    )
    cmd.add_argument(
        "--vocabulary-limit",
        type=int,
        default=1000,
        metavar="N",
        help="keep the full vocabulary up to this many categories (default: 1000)",
    )
    cmd.set_defaults(func=run_build)


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
