"""The join of predictions with ground truth, and the window of matched pairs.

Predictions of models with `ground_truth` configured are kept by prediction id in a bounded
store with a TTL; ground truth that arrives first waits in a bounded pending store. Every way
a join can fail is counted, never silent:
- `duplicate`: ground truth for an id already joined (the first one counts);
- `unknown_id`: ground truth whose prediction never arrived before the pending TTL ran out;
- evictions of unjoined predictions, by `ttl` or `capacity`.
Matched pairs stay in a time window per (model, version, output), from which the performance
metrics are computed when they are read. The state merges across workers by concatenation.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from otelml.gateway.performance.exposition import performance_families
from otelml.gateway.performance.metrics import Metrics, evaluate
from otelml.gateway.state.families import Family
from otelml.gateway.state.keys import ModelKey

Value = float | str
#: Longer prediction ids are kept as their SHA-256: a store of `max_predictions` ids stays
#: bounded in bytes, and two long ids never collide the way cut ones would.
MAX_ID_CHARS = 256


def join_key(prediction_id: str) -> str:
    """The id as the join keeps it: itself, or `sha256:<hex>` of a longer one."""
    if len(prediction_id) <= MAX_ID_CHARS:
        return prediction_id
    return "sha256:" + hashlib.sha256(prediction_id.encode("utf-8", "surrogatepass")).hexdigest()


class Prediction(NamedTuple):
    model: ModelKey
    value: Value
    time_s: float
    #: (segment feature, value) of the prediction's row: its pairs also count per slice.
    segments: tuple[tuple[str, str], ...] = ()


class Truth(NamedTuple):
    value: Value
    model: ModelKey | None
    time_s: float


class Pair(NamedTuple):
    time_s: float
    truth: Value
    predicted: Value


class JoinLimits(Protocol):
    """How long a prediction waits for its ground truth, and how many wait at most."""

    @property
    def ttl(self) -> float: ...

    @property
    def max_predictions(self) -> int: ...


class ModelJoin(Protocol):
    """One configured model, as far as the join goes (the config's `ModelConfig` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str | None: ...

    @property
    def window(self) -> float: ...

    @property
    def ground_truth(self) -> JoinLimits | None: ...


@dataclass
class _Limits:
    ttl_s: float
    max_predictions: int
    window_s: float


@dataclass
class GroundTruthTracker:
    configs: Sequence[ModelJoin]
    predictions: OrderedDict[tuple[str, str], Prediction] = field(default_factory=OrderedDict)
    pending: OrderedDict[tuple[str, str], Truth] = field(default_factory=OrderedDict)
    joined: OrderedDict[tuple[str, str], tuple[float, ModelKey]] = field(
        default_factory=OrderedDict
    )
    pairs: dict[tuple[ModelKey, str], deque[Pair]] = field(default_factory=dict)
    matched: Counter[tuple[ModelKey, str]] = field(default_factory=Counter)
    unmatched: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    evicted: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def limits(self, model: ModelKey) -> _Limits | None:
        for config in self.configs:
            if config.name == model.model and config.version in (None, model.version):
                if config.ground_truth is None:
                    return None
                return _Limits(
                    config.ground_truth.ttl, config.ground_truth.max_predictions, config.window
                )
        return None

    def enabled(self, model: ModelKey) -> bool:
        return self.limits(model) is not None

    def add_prediction(
        self,
        prediction_id: str,
        output: str,
        model: ModelKey,
        value: Value,
        now: float,
        segments: tuple[tuple[str, str], ...] = (),
    ) -> None:
        limits = self.limits(model)
        if limits is None:
            return
        key = (join_key(prediction_id), output)
        waiting = self.pending.pop(key, None)
        if waiting is not None:  # the truth came first
            self._join(key, model, output, value, waiting.value, now, segments)
            return
        self.predictions[key] = Prediction(model, value, now, segments)
        self.predictions.move_to_end(key)
        while len(self.predictions) > limits.max_predictions:
            _, old = self.predictions.popitem(last=False)
            self.evicted[(old.model.model, old.model.version, "capacity")] += 1

    def add_truth(
        self,
        prediction_id: str,
        output: str,
        value: Value,
        now: float,
        model: ModelKey | None = None,
    ) -> None:
        key = (join_key(prediction_id), output)
        if key in self.joined:
            labels = self.joined[key][1]  # the model of the prediction it already joined
            self.unmatched[(labels.model, labels.version, output, "duplicate")] += 1
            return
        prediction = self.predictions.pop(key, None)
        if prediction is not None:
            self._join(
                key, prediction.model, output, prediction.value, value, now, prediction.segments
            )
            return
        if key in self.pending:
            labels = model or ModelKey("", "")
            self.unmatched[(labels.model, labels.version, output, "duplicate")] += 1
            return
        self.pending[key] = Truth(value, model, now)
        cap = max(
            (c.ground_truth.max_predictions for c in self.configs if c.ground_truth), default=0
        )
        while len(self.pending) > cap:
            (_, old_output), old = self.pending.popitem(last=False)
            labels = old.model or ModelKey("", "")
            self.unmatched[(labels.model, labels.version, old_output, "unknown_id")] += 1

    def _join(
        self,
        key: tuple[str, str],
        model: ModelKey,
        output: str,
        predicted: Value,
        truth: Value,
        now: float,
        segments: tuple[tuple[str, str], ...] = (),
    ) -> None:
        pair = Pair(now, truth, predicted)
        self.pairs.setdefault((model, output), deque()).append(pair)
        for segment in segments:
            sliced = ModelKey(model.model, model.version, segment)
            self.pairs.setdefault((sliced, output), deque()).append(pair)
        self.matched[(model, output)] += 1
        self.joined[key] = (now, model)
        limits = self.limits(model)
        while limits is not None and len(self.joined) > limits.max_predictions:
            self.joined.popitem(last=False)

    def expire(self, now: float) -> None:
        """Drop what outlived its TTL (counted) and pairs older than their window."""
        ttl = max((c.ground_truth.ttl for c in self.configs if c.ground_truth), default=0.0)
        while self.predictions:
            oldest = next(iter(self.predictions.values()))
            limits = self.limits(oldest.model)
            if limits is not None and now - oldest.time_s <= limits.ttl_s:
                break
            self.predictions.popitem(last=False)
            self.evicted[(oldest.model.model, oldest.model.version, "ttl")] += 1
        while self.pending:
            (_, output), truth = next(iter(self.pending.items()))
            if now - truth.time_s <= ttl:
                break
            self.pending.popitem(last=False)
            labels = truth.model or ModelKey("", "")
            self.unmatched[(labels.model, labels.version, output, "unknown_id")] += 1
        while self.joined and now - next(iter(self.joined.values()))[0] > ttl:
            self.joined.popitem(last=False)
        for (model, _), pairs in self.pairs.items():
            limits = self.limits(model.whole)
            window = limits.window_s if limits else 0.0
            while pairs and now - pairs[0].time_s > window:
                pairs.popleft()

    def metrics(self, now: float) -> dict[tuple[ModelKey, str], tuple[int, Metrics]]:
        """(pairs in the window, metrics) per (model version, output)."""
        self.expire(now)
        out = {}
        for key, pairs in self.pairs.items():
            truth = [p.truth for p in pairs]
            predicted = [p.predicted for p in pairs]
            out[key] = (len(pairs), evaluate(truth, predicted))
        return out

    def collect(self) -> Iterator[Family]:
        """Performance over the window as of now, and the join's counters."""
        return performance_families(
            self.metrics(time.time()),
            self.matched,
            self.unmatched,
            self.evicted,
            (len(self.predictions), len(self.pending)),
        )

    def merge(self, other: GroundTruthTracker) -> None:
        """Another worker's joins: pairs, counters and waiting entries add up."""
        for key, pairs in other.pairs.items():
            mine = self.pairs.setdefault(key, deque())
            mine.extend(pairs)
            self.pairs[key] = deque(sorted(mine))
        self.matched.update(other.matched)
        self.unmatched.update(other.unmatched)
        self.evicted.update(other.evicted)
        self.predictions.update(other.predictions)
        self.pending.update(other.pending)
