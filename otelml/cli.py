"""The `otelml` command: gateway, proxy, profile build, drift, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from otelml import __version__
from otelml.errors import ConfigError, MissingExtra
from otelml.extras import needs


def _gateway(args: argparse.Namespace) -> int:
    with needs("gateway"):
        from otelml.config import load
        from otelml.gateway.app import serve
        from otelml.gateway.validation import check

    try:
        config = check(load(args.config))  # every config error, before anything starts
    except ConfigError as exc:
        return _invalid(f"otelml gateway: invalid configuration ({args.config or 'defaults'})", exc)
    if args.check:
        print("configuration ok")
        return 0
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"otelml gateway: {exc}", file=sys.stderr)
        return 1
    return 0


def _invalid(heading: str, error: ConfigError) -> int:
    """Every problem of a config file on stderr, one per line; exit status 2."""
    print(f"{heading}:", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def _proxy(args: argparse.Namespace) -> int:
    with needs("proxy"):
        from otelml.proxy import ProxySettings, load, serve

    try:
        rules = load(args.config)
    except ConfigError as exc:
        return _invalid(f"otelml proxy: invalid rules ({args.config})", exc)
    if args.check:
        print("rules ok")
        return 0
    settings = ProxySettings(
        upstream=args.upstream,
        rules=rules,
        listen=args.listen,
        admin=args.admin or None,
        gateway=args.gateway,
        timeout=args.timeout,
    )
    try:
        try:  # uvloop, when installed, halves the cost of the proxy's socket calls
            import uvloop

            uvloop.run(serve(settings))
        except ImportError:
            asyncio.run(serve(settings))
    except (OSError, ValueError) as exc:
        print(f"otelml proxy: {exc}", file=sys.stderr)
        return 1
    return 0


def _drift(args: argparse.Namespace) -> int:
    from pathlib import Path

    with needs("gateway"):
        from otelml.gateway.drift.batch import assess_windows
        from otelml.gateway.drift.batch_performance import assess_performance, performance_table
        from otelml.gateway.drift.report import table, write_html, write_json
        from otelml.profile import ProfileError, load, read_table

    try:
        reference = load(args.reference)
        current = read_table(args.current)
    except ProfileError as exc:
        print(f"otelml drift: {exc}", file=sys.stderr)
        return 2
    for column in (args.time_column, args.target):
        if column and column not in current.columns:
            print(f"otelml drift: no column {column!r} in {args.current}", file=sys.stderr)
            return 2
    results = assess_windows(
        reference,
        current,
        time_column=args.time_column,
        window=args.window,
        method=args.method,
        min_samples=args.min_samples,
    )
    if not results:
        print("otelml drift: no column of the reference profile is in the data", file=sys.stderr)
        return 2
    print(table(results))
    performance = assess_performance(
        reference,
        current,
        target=args.target,
        time_column=args.time_column,
        window=args.window,
    )
    if performance:
        print()
        print(performance_table(performance))
    if args.json:
        write_json(results, Path(args.json), [p.as_dict() for p in performance])
    if args.html:
        write_html(
            results,
            Path(args.html),
            f"Drift of {args.current} vs {args.reference}",
            [p.as_dict() for p in performance],
        )
    return 1 if args.fail_on_drift and any(r.drift for r in results) else 0


def _demo(args: argparse.Namespace) -> int:
    with needs("demo"):
        from otelml.demo import Ports, run

    ports = Ports(
        args.grpc_port, args.http_port, args.admin_port, args.service_port, args.prometheus_port
    )
    return run(
        duration=args.duration,
        workdir=args.workdir,
        ports=ports,
        exit_after_summary=args.exit,
        with_prometheus=args.with_prometheus,
    )


def _profile_build(args: argparse.Namespace) -> int:
    with needs("profile"):
        from otelml.profile.cli import run_build

    return run_build(args)


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
    cmd.add_argument(
        "--target",
        metavar="COL",
        help="binary label column: calibrates every probability --prediction on it, for "
        "label-free performance estimates in the gateway (not profiled as a feature)",
    )
    cmd.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="probability above which a prediction is positive (default: 0.5)",
    )
    cmd.set_defaults(func=_profile_build)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otelml", description=__doc__)
    parser.add_argument("--version", action="version", version=f"otelml {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    gateway = commands.add_parser("gateway", help="run the OTLP gateway")
    gateway.add_argument("-c", "--config", help="gateway.yaml (default: built-in defaults)")
    gateway.add_argument("--check", action="store_true", help="validate the config and exit")
    gateway.set_defaults(func=_gateway)

    proxy = commands.add_parser(
        "proxy",
        help="reverse-proxy sidecar: ml.* spans from a JSON model server's traffic",
        description="Forward every request to --upstream unchanged; requests matching a rule "
        "in the rules file also leave a span with their features and predictions. The proxy "
        "answers by itself only 502 (upstream unreachable) and 504 (upstream timed out). "
        "Spans go over OTLP as the OTEL_* variables say (default grpc, localhost:4317).",
    )
    proxy.add_argument("--upstream", required=True, help="the model server, e.g. http://tfs:8501")
    proxy.add_argument("-c", "--config", required=True, help="rules.yaml")
    proxy.add_argument("--listen", default="0.0.0.0:8080", help="host:port (default %(default)s)")
    proxy.add_argument(
        "--admin",
        default="0.0.0.0:9465",
        help="host:port of /metrics and /healthz; empty to disable (default %(default)s)",
    )
    proxy.add_argument(
        "--gateway", help="OTLP endpoint of the gateway (overrides OTEL_EXPORTER_OTLP_ENDPOINT)"
    )
    proxy.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the upstream before answering 504 (default %(default)s)",
    )
    proxy.add_argument("--check", action="store_true", help="validate the rules and exit")
    proxy.set_defaults(func=_proxy)

    add_profile_commands(commands)

    drift = commands.add_parser("drift", help="drift of a data file against a reference profile")
    drift.add_argument("--reference", required=True, help="reference.json (otelml profile build)")
    drift.add_argument("--current", required=True, help="current data: .csv or .parquet")
    drift.add_argument("--time-column", help="timestamp column, to assess each --window")
    drift.add_argument("--window", help="window length as a pandas frequency: 1h, 1D, 15min")
    drift.add_argument(
        "--method",
        default="auto",
        choices=["auto", "psi", "kl", "js", "hellinger", "wasserstein", "ks", "chi2", "z"],
    )
    drift.add_argument("--min-samples", type=int, default=1, help="rows below which: no verdict")
    drift.add_argument(
        "--target",
        help="label column: realized performance beside the estimate (reference built with "
        "--target); without it, performance is only estimated",
    )
    drift.add_argument("--json", help="write the results as JSON")
    drift.add_argument("--html", help="write the results as an HTML page")
    drift.add_argument("--fail-on-drift", action="store_true", help="exit 1 when anything drifted")
    drift.set_defaults(func=_drift)

    demo = commands.add_parser("demo", help="gateway + example model traffic with a drift phase")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds of traffic")
    demo.add_argument(
        "--workdir",
        default=None,
        help="keep the demo's files here (default: a temporary directory)",
    )
    demo.add_argument("--exit", action="store_true", help="stop after the summary (for scripts)")
    demo.add_argument(
        "--with-prometheus",
        action="store_true",
        help="also run Debian's prometheus, scraping the gateway with exemplar storage",
    )
    for name, default, what in (
        ("grpc-port", 4317, "OTLP gRPC"),
        ("http-port", 4318, "OTLP HTTP"),
        ("admin-port", 9464, "/metrics, /ui and /api"),
        ("service-port", 0, "the model service (0: any free port)"),
        ("prometheus-port", 9090, "prometheus, with --with-prometheus"),
    ):
        demo.add_argument(
            f"--{name}", type=int, default=default, help=f"{what} (default %(default)s)"
        )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MissingExtra as missing:
        print(f"otelml {args.command}: {missing}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before a command installs its own handling
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
