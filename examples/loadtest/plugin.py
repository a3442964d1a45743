"""The locust side: options, the phased shape, the model user, and the listeners that watch the
gateway during the run and print the verdict at the end.

A locustfile imports `ModelUser` and `PhasedShape` from here, subclasses `ModelUser` with its
service's paths and body shapes, and is run as usual (`locust -f locustfile.py ...`).
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import requests
from locust import HttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.util.timespan import parse_timespan

from .gateway_metrics import Snapshot, parse
from .traffic import MOVED, OUTPUT, Row, Traffic
from .verdict import Poll, Sent, Verdict, judge

log = logging.getLogger("otelml.loadtest")
#: The exit code of a run whose verdict failed under --otelml-strict (locust's own is 1).
VERDICT_FAILED = 3
#: Without -t: the whole run.
DEFAULT_RUN_TIME = 180
#: Users that are mid-request when the run ends finish it (up to this long), so every row
#: the gateway counts is one locust saw answered.
STOP_TIMEOUT = 10.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("otelml", "the monitoring side of the load test")
    add = group.add_argument
    add(
        "--otelml-model",
        env_var="OTELML_MODEL",
        default="diabetes",
        help="the model at the gateway",
    )
    add(
        "--otelml-metrics-url",
        env_var="OTELML_METRICS_URL",
        default="http://127.0.0.1:9464/metrics",
        help="the gateway's /metrics",
    )
    add(
        "--otelml-ground-truth-url",
        env_var="OTELML_GROUND_TRUTH_URL",
        default="http://127.0.0.1:4318/v1/ground_truth",
        help="the gateway's POST /v1/ground_truth",
    )
    add(
        "--otelml-training-csv",
        env_var="OTELML_TRAINING_CSV",
        default="",
        help="rows to draw requests from (default: training.csv beside the locustfile)",
    )
    add(
        "--otelml-warmup",
        env_var="OTELML_WARMUP",
        default="",
        help="warm-up, e.g. 10s (default: a tenth of -t)",
    )
    add(
        "--otelml-drift-at",
        env_var="OTELML_DRIFT_AT",
        default="",
        help="drift phase start, e.g. 2m, or 'never' (default: halfway after warm-up)",
    )
    add(
        "--otelml-batch-share",
        env_var="OTELML_BATCH_SHARE",
        type=float,
        default=0.3,
        help="share of calls that are batch calls",
    )
    add(
        "--otelml-batch-size",
        env_var="OTELML_BATCH_SIZE",
        default="2-8",
        help="rows per batch call: N or MIN-MAX",
    )
    add(
        "--otelml-wait",
        env_var="OTELML_WAIT",
        default="0.05-0.2",
        help="seconds each user waits between calls: N or MIN-MAX (0: as fast as answered)",
    )
    add(
        "--otelml-truth-share",
        env_var="OTELML_TRUTH_SHARE",
        type=float,
        default=0.5,
        help="share of predictions whose ground truth is posted",
    )
    add(
        "--otelml-truth-delay",
        env_var="OTELML_TRUTH_DELAY",
        type=float,
        default=2.0,
        help="seconds after the prediction its ground truth is posted",
    )
    add(
        "--otelml-poll",
        env_var="OTELML_POLL",
        type=float,
        default=2.0,
        help="seconds between reads of /metrics during the run",
    )
    add(
        "--otelml-settle",
        env_var="OTELML_SETTLE",
        type=float,
        default=30.0,
        help="at most this long after the run, wait for the gateway to count the last rows",
    )
    add(
        "--otelml-verdict-json",
        env_var="OTELML_VERDICT_JSON",
        default="",
        help="also write the verdict and its facts to this file",
    )
    add("--otelml-seed", env_var="OTELML_SEED", type=int, default=None, help="random seed")
    add(
        "--otelml-strict",
        env_var="OTELML_STRICT",
        action="store_true",
        default=False,
        help=f"exit {VERDICT_FAILED} when the verdict fails (counts differ, drift missed or early)",
    )


@dataclass(frozen=True)
class Plan:
    """When each phase starts, in seconds of the run."""

    warmup: float
    drift_at: float | None
    end: float

    @classmethod
    def of(cls, options: Any) -> Plan:
        end = float(options.run_time or DEFAULT_RUN_TIME)
        warmup = _seconds(options.otelml_warmup, end / 10)
        if options.otelml_drift_at == "never":
            drift_at = None
        else:
            drift_at = _seconds(options.otelml_drift_at, warmup + (end - warmup) / 2)
        if drift_at is not None and drift_at >= end:
            drift_at = None
        return cls(warmup, drift_at, end)

    def phase(self, at: float) -> str:
        if at < self.warmup:
            return "warm-up"
        return "drift" if self.drift_at is not None and at >= self.drift_at else "normal"


class PhasedShape(LoadTestShape):
    """Warm-up, normal, drift: -u users (spawned at -r per second) throughout, until -t."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        if self.get_run_time() >= Plan.of(options).end:
            return None
        return int(options.num_users or 1), float(options.spawn_rate or 1)


class LoadTest:
    """One run's bookkeeping: what was sent, ground truth to post, reads of the gateway."""

    def __init__(self, environment: Environment, locustfile_dir: Path) -> None:
        options = environment.parsed_options
        self.environment = environment
        self.options = options
        self.plan = Plan.of(options)
        csv = Path(options.otelml_training_csv or locustfile_dir / "training.csv")
        self.traffic = Traffic(csv, options.otelml_seed)
        self.random = random.Random(options.otelml_seed)
        low, high = _range(options.otelml_batch_size, "--otelml-batch-size")
        self.batch_sizes = (int(low), int(high))
        self.wait = _range(options.otelml_wait, "--otelml-wait")
        self.sent = Sent()
        self.truth: deque[tuple[float, str, float]] = deque()  # (due, prediction id, value)
        self.polls: list[Poll] = []
        self.http = requests.Session()  # the reads of /metrics
        self.truth_http = requests.Session()
        self.started = time.monotonic()
        self.greenlets = [gevent.spawn(self._poll_loop), gevent.spawn(self._truth_loop)]

    def now(self) -> float:
        shape = self.environment.shape_class
        return shape.get_run_time() if shape is not None else time.monotonic() - self.started

    def next_call(self) -> tuple[list[Row], bool]:
        batch = self.random.random() < self.options.otelml_batch_share
        count = self.random.randint(*self.batch_sizes) if batch else 1
        return self.traffic.draw(count, self.plan.phase(self.now()) == "drift"), batch

    def answered(self, trace_id: str, rows: list[Row]) -> None:
        self.sent.requests += 1
        self.sent.rows += len(rows)
        due = time.monotonic() + self.options.otelml_truth_delay
        for index, row in enumerate(rows):
            if self.random.random() < self.options.otelml_truth_share:
                self.truth.append((due, f"{trace_id}:{index}", row.target))

    def read(self) -> Snapshot | None:
        try:
            response = self.http.get(self.options.otelml_metrics_url, timeout=5)
            response.raise_for_status()
        except requests.RequestException:
            return None
        return parse(response.text, self.options.otelml_model)

    def _poll_loop(self) -> None:
        while True:
            at = self.now()
            self.polls.append(Poll(at, self.plan.phase(at), self.read()))
            gevent.sleep(self.options.otelml_poll)

    def _truth_loop(self) -> None:
        while True:
            self.post_truth(time.monotonic())
            gevent.sleep(0.5)

    def post_truth(self, until: float) -> None:
        """Post the ground truth due by `until`, in one request (outside locust's statistics:
        the gateway being down must not count as a failure of the service under test)."""
        due = []
        while self.truth and self.truth[0][0] <= until:
            _, prediction_id, value = self.truth.popleft()
            due.append({"prediction_id": prediction_id, "value": value, "output": OUTPUT})
        if not due:
            return
        try:
            url = self.options.otelml_ground_truth_url
            response = self.truth_http.post(url, json=due, timeout=10)
            ok = response.status_code == 200
        except requests.RequestException:
            ok = False
        self.sent.ground_truth_posted += len(due)
        self.sent.ground_truth_failed += 0 if ok else len(due)

    def finish(self) -> Verdict:
        gevent.killall(self.greenlets)
        self.post_truth(float("inf"))
        self.sent.locust_failures = self.environment.stats.total.num_failures
        final = self._settled()
        return judge(
            self.options.otelml_model, self.sent, self.polls, final, MOVED, self.plan.drift_at
        )

    def _settled(self) -> Snapshot | None:
        """The gateway's count once it has every row, or has stopped changing (spans wait in
        the services' export batches for a few seconds), or the settle time is up."""
        deadline = time.monotonic() + self.options.otelml_settle
        last, unchanged_since = None, time.monotonic()
        while True:
            snapshot = self.read()
            if snapshot is not None and snapshot.counted == self.sent.rows:
                return snapshot
            if snapshot is None or last is None or snapshot.rows != last.rows:
                unchanged_since = time.monotonic()
            last = snapshot if snapshot is not None else last
            if time.monotonic() > deadline or time.monotonic() - unchanged_since > 10:
                return snapshot
            gevent.sleep(0.5)


_run: LoadTest | None = None


def current() -> LoadTest:
    if _run is None:
        raise RuntimeError("the load test has not started")
    return _run


class ModelUser(HttpUser):
    """Calls a model service: single and batch predictions in the configured mix, each with
    its own trace id (W3C traceparent), so ground truth can name the prediction later."""

    abstract = True
    single_path = "/predict"
    batch_path = "/predict_batch"

    def single_body(self, features: dict[str, float | int]) -> Any:
        return features

    def batch_body(self, rows: list[dict[str, float | int]]) -> Any:
        return {"patients": rows}

    def wait_time(self) -> float:
        low, high = current().wait
        return current().random.uniform(low, high)

    @task
    def predict(self) -> None:
        run = current()
        rows, batch = run.next_call()
        features = [row.features for row in rows]
        body = self.batch_body(features) if batch else self.single_body(features[0])
        trace_id = secrets.token_hex(16)
        headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        path = self.batch_path if batch else self.single_path
        with self.client.post(path, json=body, headers=headers, catch_response=True) as response:
            if response.status_code == 200:
                run.answered(trace_id, rows)
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


def register(locustfile: str) -> None:
    """Hook the run's bookkeeping into locust; a locustfile calls it with its `__file__`."""
    directory = Path(locustfile).resolve().parent

    @events.init.add_listener
    def _check(environment: Environment, **_: Any) -> None:
        """Bad options or a missing training.csv stop locust before any user starts."""
        options = environment.parsed_options
        if options is None:
            return
        try:
            Plan.of(options)
            _range(options.otelml_batch_size, "--otelml-batch-size")
            _range(options.otelml_wait, "--otelml-wait")
            Traffic(Path(options.otelml_training_csv or directory / "training.csv"))
        except (OSError, ValueError) as error:
            sys.exit(f"otelml load test: {error}")

    @events.test_start.add_listener
    def _start(environment: Environment, **_: Any) -> None:
        global _run
        if not environment.stop_timeout:
            environment.stop_timeout = STOP_TIMEOUT
        _run = LoadTest(environment, directory)

    @events.test_stop.add_listener
    def _stop(environment: Environment, **_: Any) -> None:
        if _run is None:
            return
        verdict = _run.finish()
        print(verdict.report(), flush=True)
        if environment.parsed_options.otelml_verdict_json:
            document = {"passed": verdict.passed, "problems": verdict.problems, **verdict.facts}
            Path(environment.parsed_options.otelml_verdict_json).write_text(
                json.dumps(document, indent=1)
            )
        if environment.parsed_options.otelml_strict and not verdict.passed:
            environment.process_exit_code = VERDICT_FAILED


def _seconds(value: str, default: float) -> float:
    return float(parse_timespan(value)) if value else default


def _range(value: object, option: str) -> tuple[float, float]:
    """`N` or `MIN-MAX` → (low, high)."""
    low, _, high = str(value).partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise ValueError(f"{option}: expected N or MIN-MAX, got {value!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"{option}: expected 0 <= MIN <= MAX, got {value!r}")
    return bounds
