"""/api/v1 against a gateway fed a drifting stream: exact values, OpenAPI, auth, speed."""

from __future__ import annotations

from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
from openapi_spec_validator import validate

from otelml import profile
from otelml.gateway.app import Gateway
from otelml.gateway.ui import openapi, query
from otelml.profile.binning import bucket_counts
from tests.conftest import running_gateway
from tests.gateway.otlp_builders import traces
from tests.gateway.ui import drifting


@pytest.fixture
def fed(tmp_path: Path) -> tuple[Gateway, list[tuple[str, dict[str, object]]]]:
    """Two steps of normal traffic, then five of drifted traffic (window: four steps).

    Returns the gateway and every span sent, the current window's last."""
    drifting.sample_every_request()
    gateway = Gateway(drifting.config(tmp_path), forward=False)
    assert gateway.state.drift is not None
    sent = []
    for step in range(7):
        batch = drifting.feed(gateway, 200, step >= 2, 1 + step * 1000, step)
        gateway.state.drift.evaluate(gateway.state.store, float(step))
        sent += batch.spans
    return gateway, sent


WINDOW_SPANS = 4 * 200  # the last four steps


def test_series_buckets_are_the_reference_and_the_window_on_the_reference_bins(
    fed: tuple[Gateway, list[tuple[str, dict[str, object]]]], tmp_path: Path
) -> None:
    gateway, every = fed
    window = every[-WINDOW_SPANS:]
    detail = query.series(gateway.state, "churn", "3", "feature", "age", None)
    reference = profile.load(tmp_path / "reference.json").features["age"]
    assert isinstance(reference, profile.NumericProfile)
    edges = np.asarray(reference.edges)
    ages = np.array([float(a["ml.feature.age"]) for _, a in window])  # type: ignore[arg-type]
    expected = bucket_counts(edges, ages)
    assert [b["reference"] for b in detail["buckets"]] == list(reference.counts)
    assert [b["current"] for b in detail["buckets"]] == expected.tolist()
    assert detail["current"] == "drift_window" and detail["window_seconds"] == 4
    first, second, last = detail["buckets"][0], detail["buckets"][1], detail["buckets"][-1]
    assert first["label"] == f"x ≤ {edges[0]:.4g}" and first["lower"] is None
    assert second["label"] == f"{edges[0]:.4g} < x ≤ {edges[1]:.4g}"
    assert (second["lower"], second["upper"]) == (edges[0], edges[1])
    assert last["label"] == f"x > {edges[-1]:.4g}" and last["upper"] is None
    # Every sample of a bucket is a request that was sent, with its value in that bucket.
    sent = dict(every)
    checked = 0
    for bucket in detail["buckets"]:
        for sample in bucket["samples"]:
            value = sample["value"]
            assert isinstance(value, float)
            assert sent[sample["trace_id"]]["ml.feature.age"] == value
            lower, upper = bucket["lower"], bucket["upper"]
            assert (lower is None or value > lower) and (upper is None or value <= upper)
            checked += 1
    assert checked >= 20
    # The moved bucket is the largest share change, and it is where drift put the ages.
    summary = detail["summary"]
    shares = expected / expected.sum() - np.asarray(reference.counts) / sum(reference.counts)
    assert summary["moved_most"] is not None
    assert summary["moved_most"]["index"] == int(np.argmax(np.abs(shares)))
    assert summary["detected"] is True and summary["observations"] == len(window)
    assert detail["history"][-1]["score"] == pytest.approx(summary["score"], rel=1e-6)
    assert [p["detected"] for p in detail["history"]][-1] is True
    event = detail["events"][0]
    assert event["label"] == detail["buckets"][event["bucket"]]["label"]
    assert event["samples"] == detail["buckets"][event["bucket"]]["samples"]


def test_models_and_model_list_the_drifting_first(
    fed: tuple[Gateway, list[tuple[str, dict[str, object]]]],
) -> None:
    gateway, _ = fed
    listed = query.models(gateway.state)["models"]
    assert [(m["model"], m["version"]) for m in listed] == [("churn", "3")]
    assert listed[0]["drifting"] == ["age", "contract", "prediction"]
    assert listed[0]["segments"] == ["contract"]
    detail = query.model(gateway.state, "churn", "3", None)
    names = [s["name"] for s in detail["series"]]
    assert names[-1] == "tenure" and detail["series"][-1]["detected"] is False
    assert all(s["detected"] for s in detail["series"][:-1])
    assert {o["feature"]: o["values"] for o in detail["segments"]} == {
        "contract": sorted(drifting.CONTRACTS)
    }
    sliced = query.model(gateway.state, "churn", "3", "contract:monthly")
    assert sliced["segment"] == "contract:monthly"


def test_a_request_shows_its_row_as_sent(
    fed: tuple[Gateway, list[tuple[str, dict[str, object]]]],
) -> None:
    gateway, window = fed
    sent = dict(window)
    detail = query.series(gateway.state, "churn", "3", "feature", "contract", None)
    sample = next(s for b in detail["buckets"] for s in b["samples"])
    found = query.request(gateway.state, sample["trace_id"], "churn", "3", gateway.config.ui)
    attributes = sent[sample["trace_id"]]
    row = found["rows"][0]
    assert row["features"] == {
        "age": attributes["ml.feature.age"],
        "tenure": attributes["ml.feature.tenure"],
        "contract": attributes["ml.feature.contract"],
    }
    assert row["predictions"] == {"prediction": attributes["ml.prediction"]}
    assert found["grafana_url"] is None
    with pytest.raises(query.NotFound):
        query.request(gateway.state, "0" * 32, None, None, gateway.config.ui)


def test_grafana_links_open_the_trace_in_explore(tmp_path: Path) -> None:
    config = drifting.config(tmp_path, ui={"grafana_url": "http://grafana:3000/"})
    url = query.explore_url(config.ui, "ab" * 16)
    assert url is not None and url.startswith("http://grafana:3000/explore?schemaVersion=1")
    assert "ab" * 16 in url and "tempo" in url


def test_openapi_document_is_valid_and_every_answer_matches_it(tmp_path: Path) -> None:
    document = openapi.document()
    validate(document)  # openapi-spec-validator: a real OpenAPI 3.1 validator
    drifting.sample_every_request()
    with running_gateway(drifting.config(tmp_path)) as gateway:
        drifting.stream_until_drift(gateway.http_url, gateway.admin_url)
        base = f"{gateway.admin_url}/api/v1"
        served = httpx.get(f"{base}/openapi.json", timeout=10).json()
        assert served == document
        model = {"name": "churn", "version": "3"}
        series = {**model, "role": "feature", "series": "age"}
        detail = httpx.get(f"{base}/series", params=series, timeout=10).json()
        trace = next(b["samples"][0]["trace_id"] for b in detail["buckets"] if b["samples"])
        calls = [
            ("/api/v1/info", {}, "Info"),
            ("/api/v1/models", {}, "ModelsResponse"),
            ("/api/v1/model", model, "ModelDetail"),
            ("/api/v1/model", {**model, "segment": "contract:monthly"}, "ModelDetail"),
            ("/api/v1/series", series, "SeriesDetail"),
            ("/api/v1/requests/{trace_id}", model, "RequestDetail"),
            ("/api/v1/model", {"name": "nope", "version": "1"}, "Problem"),
        ]
        for path, params, name in calls:
            response = httpx.get(
                gateway.admin_url + path.replace("{trace_id}", trace), params=params, timeout=10
            )
            assert response.status_code == (404 if name == "Problem" else 200), response.text
            schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
            jsonschema.validate(response.json(), schema)
        assert httpx.get(f"{base}/series", params=model, timeout=10).status_code == 400


def test_with_auth_the_api_needs_the_token_and_the_page_holds_no_data(tmp_path: Path) -> None:
    with running_gateway(drifting.config(tmp_path, auth={"bearer_token": "s3cret"})) as gateway:
        base = f"{gateway.admin_url}/api/v1"
        for path in ("/models", "/info", "/openapi.json"):
            refused = httpx.get(base + path, timeout=10)
            assert refused.status_code == 401 and refused.headers["www-authenticate"]
            wrong = httpx.get(base + path, headers={"Authorization": "Bearer nope"}, timeout=10)
            assert wrong.status_code == 401
            good = httpx.get(base + path, headers={"Authorization": "Bearer s3cret"}, timeout=10)
            assert good.status_code == 200
        assert httpx.get(base + "/info", headers={"Authorization": "Bearer s3cret"}).json()["auth"]
        page = httpx.get(f"{gateway.admin_url}/ui/", timeout=10)
        assert page.status_code == 200 and "churn" not in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]


def test_api_answers_at_100_models_of_20_features(tmp_path: Path) -> None:
    """The scale case (how long each call takes: `python -m bench ui`): every model listed,
    the drifting ones first, and a bucket's sample leads to its request."""
    from tests.gateway.ui.scale import fed_at_scale

    gateway = fed_at_scale(tmp_path, models=100, features=20)
    state, ui = gateway.state, gateway.config.ui
    listed = query.models(state)["models"]
    assert len(listed) == 100
    # The even models' numeric features moved by 1.5 (and f19 never sees its category "d"):
    # all 20 series drift there, and those models come first.
    shifted = {f"m{m}" for m in range(0, 100, 2)}
    assert {m["model"] for m in listed[:50]} == shifted
    assert all(len(m["drifting"]) == 20 for m in listed[:50])
    detail = query.model(state, "m42", "1", None)
    assert len(detail["series"]) == 21
    trace = query.series(state, "m42", "1", "feature", "f3", None)["buckets"][3]["samples"]
    assert trace and query.request(state, trace[0]["trace_id"], None, None, ui)["model"] == "m42"


def test_missing_and_invalid_rates_are_over_the_drift_window(tmp_path: Path) -> None:
    """Missing only in the last four steps (the window): the window's rate, not the total's."""
    gateway = Gateway(drifting.config(tmp_path), forward=False)
    assert gateway.state.drift is not None
    rng = np.random.default_rng(5)
    trace = 1
    for step in range(8):
        frame = drifting.inputs(rng, 100, drifted=False)
        _, batch = drifting.span_batch(frame, trace)
        spans = [dict(a) for _, a in batch.spans]
        if step >= 4:
            for attributes in spans[:20]:  # 20 of 100 spans carry no tenure
                del attributes["ml.feature.tenure"]
            spans[20]["ml.feature.tenure"] = "not a number"  # one type_mismatch
        gateway.pipeline.consume_traces(traces(spans, first_trace=trace), "grpc")
        trace += len(spans)
        gateway.state.drift.evaluate(gateway.state.store, float(step))
    detail = query.series(gateway.state, "churn", "3", "feature", "tenure", None)
    assert detail["missing_total"] == 4 * 20
    assert detail["invalid_total"]["type_mismatch"] == 4
    summary = detail["summary"]
    assert summary["missing_rate"] == pytest.approx(80 / 400)
    assert summary["invalid_rate"] == pytest.approx(4 / 400)
