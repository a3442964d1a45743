"""Request samples and verdict history: what they keep, and that their memory stays bounded."""

from __future__ import annotations

from pathlib import Path

from otelml.gateway.app import Gateway
from otelml.gateway.state.keys import SeriesKey
from otelml.gateway.state.samples import MAX_STRINGS, RequestSamples
from tests.gateway.ui import drifting
from tests.gateway.ui.scale import fed_at_scale

#: The stated bound (README, "The UI"): per model, sample_rows × (48 + 9 × series) bytes of rows,
#: 12 × samples_per_bucket bytes per bucket, and at most MAX_STRINGS strings of ≤ 128 chars.
MiB = 1024 * 1024


def _bound(gateway: Gateway, series_per_model: int, buckets_per_series: int) -> int:
    ui = gateway.config.ui
    width = 8
    while width < series_per_model:
        width *= 2
    rows = ui.sample_rows * (48 + 9 * width)
    slots = series_per_model * buckets_per_series * 12 * ui.samples_per_bucket
    return rows + slots + MAX_STRINGS * (49 + 128)


def test_samples_and_history_stay_within_the_bound_with_100_models_of_20_features(
    tmp_path: Path,
) -> None:
    gateway = fed_at_scale(tmp_path, models=100, features=20)
    samples, history = gateway.state.samples, gateway.state.history
    assert samples is not None and history is not None
    buckets = max(len(d.counts) for _, _, d in gateway.state.store.items())
    per_model = _bound(gateway, 21, buckets)
    assert len(samples.models) == 100
    assert samples.nbytes() <= 100 * per_model
    # History: points × series × 33 bytes, plus events (1 h at 1 s steps: capped at 720 points).
    assert gateway.state.drift is not None
    series = sum(len(t.rows) for t in gateway.state.drift.tables.values())
    assert series == 100 * 20  # the profiled series (the prediction has no reference)
    points = min(gateway.config.ui.history_points, 3600)
    assert history.nbytes() <= series * points * 33 + series * 20 * 200
    # Rows are fixed-size tables: what traffic adds is only strings, themselves capped.
    held = samples.nbytes()
    assert all(len(m.strings) <= MAX_STRINGS for _, m in samples.items())
    print(
        f"\nsamples {held / MiB:.1f} MiB (bound {100 * per_model / MiB:.1f} MiB), "
        f"history {history.nbytes() / MiB:.1f} MiB"
    )


def test_a_bucket_keeps_its_newest_requests_and_rows_are_reused(tmp_path: Path) -> None:
    drifting.sample_every_request()
    config = drifting.config(tmp_path, ui={"sample_rows": 16, "samples_per_bucket": 2})
    gateway = Gateway(config, forward=False)
    sent = drifting.feed(gateway, 400, False, 1, 0)
    samples = gateway.state.samples
    assert isinstance(samples, RequestSamples)
    kept = samples.models[next(iter(samples.models))]
    assert kept.seq.shape == (16,) and int((kept.refs < 0).sum()) == 0
    by_trace = dict(sent.spans)
    contract = SeriesKey("feature", "contract")
    for bucket in range(4):
        found = kept.bucket(contract, bucket)
        assert len(found) <= 2
        for sample in found:
            assert by_trace[sample.trace_id]["ml.feature.contract"] == sample.values[contract]
    # The newest request sampled is among the kept ones, in every series it fed.
    newest = max(range(16), key=lambda e: kept.seq[e])
    trace = kept.trace_id[newest].tobytes()
    assert (
        kept.find(trace)[0].values[SeriesKey("feature", "age")]
        == by_trace[trace.hex()]["ml.feature.age"]
    )
