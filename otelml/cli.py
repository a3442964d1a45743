"""The `otelml` command: gateway, profile build, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from otelml import __version__
from otelml.errors import ConfigError


def _gateway(args: argparse.Namespace) -> int:
    from otelml.config import load
    from otelml.gateway.app import Gateway, serve

    try:
        config = load(args.config)
        Gateway(config)  # loads reference profiles: every config error before any port is bound
    except ConfigError as exc:
        print(
            f"otelml gateway: invalid configuration ({args.config or 'defaults'}):", file=sys.stderr
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.check:
        print("configuration ok")
        return 0
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"otelml gateway: {exc}", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from otelml.demo import run

    return int(run(duration=args.duration, workdir=args.workdir))


def build_parser() -> argparse.ArgumentParser:
    from otelml.profile.cli import add_profile_commands

    parser = argparse.ArgumentParser(prog="otelml", description=__doc__)
    parser.add_argument("--version", action="version", version=f"otelml {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    gateway = commands.add_parser("gateway", help="run the OTLP gateway")
    gateway.add_argument("-c", "--config", help="gateway.yaml (default: built-in defaults)")
    gateway.add_argument("--check", action="store_true", help="validate the config and exit")
    gateway.set_defaults(func=_gateway)

    add_profile_commands(commands)

    demo = commands.add_parser("demo", help="gateway + example model traffic with a drift phase")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds of traffic")
    demo.add_argument("--workdir", default=None, help="where to write the demo's files")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
