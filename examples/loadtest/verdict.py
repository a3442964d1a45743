"""Did monitoring keep up? The judgement of one load test run, from what was sent and what the
gateway said during and after it (pure: no locust, no network)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .gateway_metrics import Snapshot


@dataclass(frozen=True)
class Poll:
    """One read of the gateway during the run."""

    at: float  # seconds since the load started
    phase: str  # "warm-up", "normal" or "drift": what was being sent then
    snapshot: Snapshot | None  # None: the gateway did not answer


@dataclass
class Sent:
    """What the load test sent (answered requests only) and what locust saw fail."""

    requests: int = 0
    rows: int = 0
    locust_failures: int = 0
    ground_truth_posted: int = 0
    ground_truth_failed: int = 0


@dataclass
class Verdict:
    model: str
    passed: bool
    problems: list[str]
    lines: list[str]
    facts: dict[str, Any] = field(default_factory=dict)

    def report(self) -> str:
        head = f"otelml verdict for model {self.model}: {'PASS' if self.passed else 'FAIL'}"
        body = [f"  {line}" for line in self.lines]
        body += [f"  problem: {p}" for p in self.problems]
        return "\n".join([head, *body])


def judge(
    model: str,
    sent: Sent,
    polls: Sequence[Poll],
    final: Snapshot | None,
    moved: Iterable[str],
    drift_at: float | None,
) -> Verdict:
    """`drift_at`: when the drift phase started (None: the run had none)."""
    moved = frozenset(moved)
    problems: list[str] = []
    lines: list[str] = []
    answered = [(p, p.snapshot) for p in polls if p.snapshot is not None]
    silent = [p.at for p in polls if p.snapshot is None]
    before = _union(s.flagged for p, s in answered if p.phase != "drift")
    during = _union(s.flagged for p, s in answered if p.phase == "drift")
    predictions = _union(s.predictions_flagged for _, s in answered)
    counted = final.counted if final is not None else None
    restarts = _restarts(answered)
    performance_seen = next(
        (s.performance for _, s in reversed(answered) if s.performance),
        {},
    )

    lines.append(
        f"rows       sent {sent.rows:,} in {sent.requests:,} answered requests; "
        + (
            "gateway unreadable at the end"
            if counted is None
            else f"gateway counted {counted:,}" + _difference(counted, sent.rows)
        )
    )
    if final is None:
        problems.append("the gateway's /metrics could not be read at the end")
    else:
        uneven = {f: n for f, n in final.rows.items() if n != sent.rows}
        if uneven or not final.rows:
            lost = sent.rows - (counted or 0)
            if lost > 0:
                problems.append(
                    f"the gateway counted {counted:,} rows of the {sent.rows:,} sent "
                    f"({lost:,} lost)"
                )
            else:
                most = max(uneven.values())
                problems.append(
                    f"the gateway counted {most:,} rows of the {sent.rows:,} sent "
                    f"({most - sent.rows:,} more than sent)"
                )
        lines.append(f"refused    {_tally(final.refused)}")
        lines.append(f"exporters  {_tally(final.exporter_failures, 'no failures')}")
        if final.exporter_failures:
            problems.append(f"exporter failures: {_tally(final.exporter_failures)}")

    if drift_at is None:
        lines.append(f"drift      no drift phase; flagged: {_names(before | during)}")
        if before | during:
            problems.append(f"drift flagged without a drift phase: {_names(before | during)}")
    else:
        lines.append(
            f"drift      phase from {drift_at:.0f} s: flagged {_names(during)} (moved: "
            f"{_names(moved)}); before it: {_names(before)}; predictions: {_names(predictions)}"
        )
        if before:
            problems.append(f"drift flagged before the drift phase: {_names(before)}")
        if moved - during:
            problems.append(f"drift missed for {_names(moved - during)}")
        if during - moved:
            extra = _names(during - moved)
            problems.append(f"drift flagged for features that did not move: {extra}")

    truth = f"truth      posted {sent.ground_truth_posted:,} ({sent.ground_truth_failed:,} failed)"
    if final is not None:
        unmatched = _tally(final.ground_truth_unmatched, "none")
        shown = final.performance or performance_seen
        performance = ", ".join(f"{k} {v:.3g}" for k, v in sorted(shown.items()))
        truth += f"; matched {final.ground_truth_matched:,}, unmatched {unmatched}"
        truth += f"; performance {performance or 'none'}"
        if sent.ground_truth_posted and not shown:
            problems.append("no performance metrics although ground truth was posted")
    lines.append(truth)
    if sent.ground_truth_failed:
        problems.append(f"{sent.ground_truth_failed:,} ground truth posts failed")

    lines.append(
        f"gateway    answered {len(answered)} of {len(polls)} reads during the run"
        + (f" (no answer from {min(silent):.0f} s to {max(silent):.0f} s)" if silent else "")
    )
    if silent:
        problems.append(f"the gateway did not answer {len(silent)} of {len(polls)} reads")
    for at, was, now in restarts:
        lines.append(
            f"gateway    restarted before {at:.0f} s: its count went from {was:,} to {now:,}"
        )
        problems.append(f"the gateway restarted during the run (counts reset at {at:.0f} s)")
    lines.append(f"locust     {sent.locust_failures:,} failures")

    facts = {
        "sent": vars(sent),
        "counted": None if final is None else final.rows,
        "drift_at": drift_at,
        "flagged_before": sorted(before),
        "flagged_during": sorted(during),
        "predictions_flagged": sorted(predictions),
        "refused": None if final is None else final.refused,
        "exporter_failures": None if final is None else final.exporter_failures,
        "ground_truth_matched": None if final is None else final.ground_truth_matched,
        "performance": None if final is None else final.performance,
        "performance_seen": performance_seen,
        "restarts": restarts,
        "polls": len(polls),
        "silent_polls": silent,
        #: [seconds, phase, flagged features, performance] per read (None: no answer)
        "timeline": [
            [round(p.at, 2), p.phase]
            + (
                [None, None]
                if p.snapshot is None
                else [sorted(p.snapshot.flagged), p.snapshot.performance]
            )
            for p in polls
        ],
    }
    return Verdict(model, not problems, problems, lines, facts)


def _restarts(answered: Sequence[tuple[Poll, Snapshot]]) -> list[tuple[float, int, int]]:
    """Reads whose row count went down: the gateway's counters started again from zero."""
    return [
        (poll.at, before.counted, after.counted)
        for (_, before), (poll, after) in itertools.pairwise(answered)
        if after.counted < before.counted
    ]


def _union(sets: Iterable[frozenset[str]]) -> frozenset[str]:
    return frozenset().union(*sets)


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _tally(counts: dict[str, int], empty: str = "none") -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or empty


def _difference(counted: int, sent: int) -> str:
    if counted == sent:
        return " (all)"
    return f" ({sent - counted:,} lost)" if counted < sent else f" ({counted - sent:,} more)"
