"""The UI's one read path into the gateway state: the same objects /metrics renders.

Everything the API answers is computed here from `GatewayState` on each call — the store's
distributions, the drift engine's verdicts and windows, the reference profiles, the request
samples and the history — so there is no second copy to drift apart from the exposition.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.config import Ui
from otelml.gateway.drift import methods
from otelml.gateway.drift.engine import DriftEngine, DriftTable
from otelml.gateway.drift.history import moved_most, rows_seen
from otelml.gateway.drift.verdict import Verdict
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.state.distributions import (
    CategoricalDistribution,
    Distribution,
    NumericDistribution,
)
from otelml.gateway.state.keys import ModelKey, SeriesKey
from otelml.gateway.state.samples import ModelSamples, Sample
from otelml.gateway.ui import schema
from otelml.profile import CategoricalProfile, FeatureProfile, NumericProfile


class NotFound(LookupError):
    """A model, series or request the state does not hold."""


def parse_segment(text: str | None) -> tuple[str, str] | None:
    """`feature:value` → (feature, value); None or '' → the whole model."""
    if not text:
        return None
    feature, sep, value = text.partition(":")
    if not sep or not feature:
        raise ValueError("segment must be feature:value")
    return feature, value


def models(state: GatewayState) -> schema.ModelsResponse:
    """Every model version seen, the most drifting first."""
    verdicts = _verdicts(state.drift)
    out: list[schema.ModelSummary] = []
    segments: dict[ModelKey, set[str]] = {}
    series_of: dict[ModelKey, list[SeriesKey]] = {}
    for model, series, _ in state.store.items():
        if model.segment is not None:
            segments.setdefault(model.whole, set()).add(model.segment[0])
        else:
            series_of.setdefault(model, []).append(series)
    for model, names in series_of.items():
        drifting = [s.name for s in names if _detected(verdicts.get((model, s)))]
        without = sum(1 for s in names if _detected(verdicts.get((model, s))) is None)
        out.append(
            {
                "model": model.model,
                "version": model.version,
                "features": sum(1 for s in names if s.role == "feature"),
                "predictions": sum(1 for s in names if s.role == "prediction"),
                "drifting": sorted(drifting),
                "without_verdict": without,
                "segments": sorted(segments.get(model, ())),
            }
        )
    out.sort(key=lambda m: (-len(m["drifting"]), m["model"], m["version"]))
    return {"models": out, "time": time.time()}


def model(state: GatewayState, name: str, version: str, segment: str | None) -> schema.ModelDetail:
    """One model version (or one of its segments): every series, the drifting ones first."""
    key = ModelKey(name, version, parse_segment(segment))
    known = {s: d for m, s, d in state.store.items() if m == key}
    if not known:
        raise NotFound(f"no model {name!r} version {version!r}" + _segment_text(key))
    verdicts = _verdicts(state.drift)
    series = [_summary(state, key, s, d, verdicts.get((key, s))) for s, d in known.items()]
    series.sort(key=_severity)
    options: dict[str, set[str]] = {}
    for other, _, _ in state.store.items():
        if other.segment is not None and other.whole == key.whole:
            options.setdefault(other.segment[0], set()).add(other.segment[1])
    return {
        "model": name,
        "version": version,
        "segment": _segment_label(key),
        "segments": [{"feature": f, "values": sorted(v)} for f, v in sorted(options.items())],
        "series": series,
        "performance": _performance(state, key),
        "time": time.time(),
    }


def series(
    state: GatewayState,
    name: str,
    version: str,
    role: str,
    series_name: str,
    segment: str | None,
) -> schema.SeriesDetail:
    """One feature or prediction output: reference vs current per bucket, with samples."""
    if role not in ("feature", "prediction"):
        raise ValueError("role must be feature or prediction")
    key = ModelKey(name, version, parse_segment(segment))
    series_key = SeriesKey(role, series_name)  # type: ignore[arg-type]
    distribution = state.store.existing(key, series_key)
    if distribution is None:
        raise NotFound(f"no {role} {series_name!r} of model {name!r} version {version!r}")
    engine = state.drift
    verdict = _verdicts(engine).get((key, series_key))
    reference = engine.reference_of(key, series_key) if engine is not None else None
    located = _locate(engine, key, series_key)
    windowed = verdict is not None and len(verdict.window) > 0
    current = verdict.window if windowed and verdict is not None else distribution.counts
    samples = _model_samples(state, key)
    buckets = _buckets(distribution, reference, current, samples, series_key, key)
    history = state.history
    points: list[schema.HistoryPoint] = []
    events: list[schema.DriftEventOut] = []
    if history is not None and located is not None:
        points = [
            {
                "time": p.time_s,
                "score": p.score,
                "detected": p.detected,
                "observations": p.observations,
            }
            for p in history.series(*located)
        ]
        for event in reversed(history.events.get((key, series_key), ())):
            bucket = buckets[event.bucket] if event.bucket < len(buckets) else None
            events.append(
                {
                    "time": event.time_s,
                    "score": _finite(event.score),
                    "bucket": event.bucket,
                    "label": bucket["label"] if bucket else "",
                    "reference_share": event.reference_share,
                    "current_share": event.current_share,
                    "trace_id": event.trace_id,
                    "samples": bucket["samples"] if bucket else [],
                }
            )
    table = located[0] if located is not None else None
    return {
        "model": name,
        "version": version,
        "segment": _segment_label(key),
        "summary": _summary(state, key, series_key, distribution, verdict),
        "current": "drift_window" if windowed else "since_start",
        "window_seconds": table.window_s if table is not None else None,
        "step_seconds": table.step_s if table is not None else None,
        "buckets": buckets,
        "scores": {k: v for k, v in (verdict.scores if verdict else {}).items() if _ok(v)},
        "history": points,
        "events": events,
        "missing_total": int(distribution.missing),
        "invalid_total": dict(
            zip(semconv.INVALID_REASONS, (int(v) for v in distribution.invalid), strict=True)
        ),
        "attribution": _attribution(engine, key, series_key),
        "estimated": _estimated(engine, key, series_key),
    }


def _attribution(
    engine: DriftEngine | None, model: ModelKey, series: SeriesKey
) -> list[schema.AttributionSlice]:
    found = engine.attributor.results.get((model, series), []) if engine is not None else []
    return [
        {
            "key": s.key,
            "value": s.value,
            "explained": s.explained,
            "traffic_share": s.traffic_share,
            "slice_score": _finite(s.slice_score) or 0.0,
            "window_observations": s.window_observations,
            "trace_id": s.exemplar.trace_id if s.exemplar is not None else None,
        }
        for s in found
    ]


def _estimated(
    engine: DriftEngine | None, model: ModelKey, series: SeriesKey
) -> dict[str, schema.EstimateOut]:
    if engine is None or series.role != "prediction":
        return {}
    estimate = engine.estimated.latest.get((model, series.name), {})
    return {
        metric: {"value": value, "stderr": stderr}
        for metric, (value, stderr) in estimate.items()
        if _ok(value) and _ok(stderr)
    }


def request(
    state: GatewayState, trace_id: str, name: str | None, version: str | None, ui: Ui
) -> schema.RequestDetail:
    """The kept rows of one trace, as the gateway saw them."""
    try:
        raw = bytes.fromhex(trace_id)
    except ValueError:
        raise ValueError("trace_id must be 32 hex digits") from None
    if len(raw) != 16:
        raise ValueError("trace_id must be 32 hex digits")
    if state.samples is not None:
        for key, kept in state.samples.items():
            if (name is not None and key.model != name) or (
                version is not None and key.version != version
            ):
                continue
            rows = kept.find(raw)
            if rows:
                return {
                    "trace_id": trace_id.lower(),
                    "model": key.model,
                    "version": key.version,
                    "rows": [_row(r) for r in rows],
                    "grafana_url": explore_url(ui, trace_id.lower()),
                }
    raise NotFound(f"no kept request of trace {trace_id}")


def explore_url(ui: Ui, trace_id: str) -> str | None:
    """Grafana Explore on the trace, through the configured Tempo data source."""
    if ui.grafana_url is None:
        return None
    source = ui.tempo_datasource
    pane = {
        "t": {
            "datasource": source,
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": "tempo", "uid": source},
                    "queryType": "traceql",
                    "query": trace_id,
                }
            ],
            "range": {"from": "now-1h", "to": "now"},
        }
    }
    panes = quote(json.dumps(pane, separators=(",", ":")))
    return f"{ui.grafana_url}/explore?schemaVersion=1&orgId=1&panes={panes}"


# -- helpers ---------------------------------------------------------------------------------


def _verdicts(engine: DriftEngine | None) -> dict[tuple[ModelKey, SeriesKey], Verdict]:
    return engine.verdicts if engine is not None else {}


def _detected(verdict: Verdict | None) -> bool | None:
    return None if verdict is None else verdict.detected


def _locate(
    engine: DriftEngine | None, model: ModelKey, series: SeriesKey
) -> tuple[DriftTable, int] | None:
    if engine is None:
        return None
    for table in engine.tables.values():
        index = table.index.get((model, series))
        if index is not None:
            return table, index
    return None


def _segment_label(key: ModelKey) -> str | None:
    return f"{key.segment[0]}:{key.segment[1]}" if key.segment is not None else None


def _segment_text(key: ModelKey) -> str:
    label = _segment_label(key)
    return f" segment {label!r}" if label else ""


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _ok(value: float) -> bool:
    return math.isfinite(value)


def _severity(summary: schema.SeriesSummary) -> tuple[int, float, str, str]:
    """Drifting first (by how far past the threshold), then the rest, then no verdict."""
    detected = summary["detected"]
    score, threshold = summary["score"], summary["threshold"]
    ratio = 0.0  # how far past (or short of) its threshold the score is
    if score is not None and threshold:
        below = summary["direction"] == "below"
        ratio = threshold / max(score, 1e-300) if below else score / threshold
    rank = 0 if detected else 1 if detected is False else 2
    return rank, -ratio, summary["role"], summary["name"]


def _summary(
    state: GatewayState,
    model: ModelKey,
    series: SeriesKey,
    distribution: Distribution,
    verdict: Verdict | None,
) -> schema.SeriesSummary:
    engine = state.drift
    reference = engine.reference_of(model, series) if engine is not None else None
    method = methods.METHODS.get(verdict.method) if verdict is not None else None
    score = verdict.scores.get(method.label) if verdict is not None and method else None
    moved: schema.MovedBucket | None = None
    if verdict is not None and reference is not None and len(verdict.window):
        index, reference_share, current_share = moved_most(
            verdict.window.astype(np.float64), np.asarray(reference.counts, dtype=np.float64)
        )
        moved = {
            "index": index,
            "label": _labels(distribution, reference)[index],
            "reference_share": reference_share,
            "current_share": current_share,
        }
    missing_rate, invalid_rate = _quality(state, model, series, distribution)
    located = _locate(engine, model, series)
    return {
        "role": series.role,
        "name": series.name,
        "kind": "numeric" if isinstance(distribution, NumericDistribution) else "categorical",
        "method": verdict.method if verdict is not None else None,
        "threshold": verdict.threshold if verdict is not None else None,
        "direction": (None if method is None else "below" if method.kind == "p_value" else "above"),
        "score": _finite(score),
        "detected": verdict.detected if verdict is not None else None,
        "observations": verdict.observations if verdict is not None else 0,
        "min_samples": located[0].rows[located[1]].min_samples if located else None,
        "events": verdict.events if verdict is not None else 0,
        "moved_most": moved,
        "missing_rate": missing_rate,
        "invalid_rate": invalid_rate,
    }


def _quality(
    state: GatewayState, model: ModelKey, series: SeriesKey, distribution: Distribution
) -> tuple[float | None, float | None]:
    """Missing and invalid shares of the rows: over the drift window where there is one."""
    located = _locate(state.drift, model, series)
    window = None
    if located is not None and state.history is not None:
        window = state.history.window_quality(*located)
    if window is None or window[0] <= 0:
        invalid = int(distribution.invalid.sum())
        window = (rows_seen(distribution), distribution.missing, invalid)
    rows, missing, invalid = window
    if rows <= 0:
        return None, None
    return missing / rows, invalid / rows


def _labels(distribution: Distribution, reference: FeatureProfile | None) -> list[str]:
    if isinstance(reference, NumericProfile):
        return _ranges(reference.edges)
    if isinstance(reference, CategoricalProfile):
        return [*reference.categories, semconv.OTHER_CATEGORY]
    if isinstance(distribution, NumericDistribution):
        return _ranges(distribution.edges.tolist())
    return _category_labels(distribution)


def _category_labels(distribution: CategoricalDistribution) -> list[str]:
    names = list(distribution.categories)
    names += [""] * (distribution.capacity - len(names))
    return [*names, semconv.OTHER_CATEGORY]


def _ranges(edges: tuple[float, ...] | list[float]) -> list[str]:
    """Each bucket written out: bucket i holds edges[i-1] < x ≤ edges[i].

    Four significant digits read best; more where two edges would look the same.
    """
    for digits in (4, 6, 17):
        text = [f"{e:.{digits}g}" for e in edges]
        if len(set(text)) == len(text):
            break
    out = [f"x ≤ {text[0]}"]
    out += [f"{low} < x ≤ {high}" for low, high in itertools.pairwise(text)]
    out.append(f"x > {text[-1]}")
    return out


def _buckets(
    distribution: Distribution,
    reference: FeatureProfile | None,
    current: npt.NDArray[np.int64],
    samples: ModelSamples | None,
    series: SeriesKey,
    model: ModelKey,
) -> list[schema.Bucket]:
    labels = _labels(distribution, reference)
    reference_counts = list(reference.counts) if reference is not None else [0] * len(labels)
    current_counts = current.tolist()
    keep = list(range(len(labels)))
    if reference is None:
        if isinstance(distribution, NumericDistribution):
            used = [i for i, c in enumerate(current_counts) if c]
            keep = list(range(used[0], used[-1] + 1)) if used else []
        else:
            keep = [i for i, name in enumerate(labels) if name]
    edges = _edges_of(distribution, reference)
    reference_total = max(sum(reference_counts), 1)
    current_total = max(sum(current_counts[: len(labels)]), 1)
    out: list[schema.Bucket] = []
    for index in keep:
        lower = upper = None
        if edges is not None:
            lower = edges[index - 1] if index > 0 else None
            upper = edges[index] if index < len(edges) else None
        count = int(current_counts[index]) if index < len(current_counts) else 0
        out.append(
            {
                "index": index,
                "label": labels[index],
                "lower": lower,
                "upper": upper,
                "reference": int(reference_counts[index]),
                "reference_share": reference_counts[index] / reference_total,
                "current": count,
                "current_share": count / current_total,
                "samples": _sample_refs(samples, series, index, model),
            }
        )
    return out


def _edges_of(distribution: Distribution, reference: FeatureProfile | None) -> list[float] | None:
    if isinstance(reference, NumericProfile):
        return list(reference.edges)
    if reference is None and isinstance(distribution, NumericDistribution):
        return [float(e) for e in distribution.edges.tolist()]
    return None


def _model_samples(state: GatewayState, model: ModelKey) -> ModelSamples | None:
    if state.samples is None:
        return None
    return state.samples.models.get(model.whole)


def _sample_refs(
    samples: ModelSamples | None, series: SeriesKey, bucket: int, model: ModelKey
) -> list[schema.SampleRef]:
    if samples is None:
        return []
    out: list[schema.SampleRef] = []
    for sample in samples.bucket(series, bucket):
        if model.segment is not None and not _in_segment(sample, model.segment):
            continue
        out.append(
            {
                "trace_id": sample.trace_id,
                "span_id": sample.span_id,
                "time": sample.time_s,
                "row": sample.row,
                "value": sample.values.get(series),
            }
        )
    return out


def _in_segment(sample: Sample, segment: tuple[str, str]) -> bool:
    feature, value = segment
    if value == semconv.OTHER_CATEGORY:
        return True  # the rows of __other__ carry values of their own
    return sample.values.get(SeriesKey("feature", feature)) == value


def _row(sample: Sample) -> schema.RequestRow:
    return {
        "row": sample.row,
        "time": sample.time_s,
        "span_id": sample.span_id,
        "features": {s.name: v for s, v in sample.values.items() if s.role == "feature"},
        "predictions": {s.name: v for s, v in sample.values.items() if s.role == "prediction"},
    }


def _performance(state: GatewayState, model: ModelKey) -> list[schema.PerformanceSeries]:
    tracker = state.ground_truth
    if tracker is None:
        return []
    now = time.time()
    current = {
        output: (pairs, metrics)
        for (key, output), (pairs, metrics) in tracker.metrics(now).items()
        if key == model
    }
    history = state.history.performance if state.history is not None else {}
    outputs = sorted(set(current) | {o for (k, o) in history if k == model})
    out: list[schema.PerformanceSeries] = []
    for output in outputs:
        point: schema.PerformancePoint | None = None
        if output in current:
            pairs, metrics = current[output]
            point = {
                "time": now,
                "labels": pairs,
                "metrics": {
                    (m if label == "" else f"{m}_macro"): v
                    for (m, label), v in metrics.items()
                    if label in ("", "__macro__") and math.isfinite(v)
                },
            }
        past: list[schema.PerformancePoint] = [
            {"time": t, "labels": n, "metrics": dict(m)}
            for t, n, m in history.get((model, output), ())
        ]
        out.append({"output": output, "current": point, "history": past})
    return out
