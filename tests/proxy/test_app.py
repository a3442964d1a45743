"""The proxy as a real server between a client, a stand-in TF Serving REST server and a real
gateway: byte-identical answers, exact distributions at the gateway, trace context, upstream
errors passed through, bad input counted, and serving on with the gateway away."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from otelml import profile, semconv
from tests.conftest import loopback_config, running_gateway
from tests.proxy.harness import running_proxy
from tests.proxy.standin import StandIn, score, serve_in_thread

PREDICT = "/v1/models/{model}/versions/{version}:predict"
TFS_ROUTE = {
    "path": PREDICT,
    "model": {"name": "{model}", "version": "{version}"},
    "features": {
        "rows": "$.instances[*]",
        "columnar": "$.inputs",
        "columns": ["age", "income", "country"],
    },
    "predictions": {"rows": "$.predictions[*]", "columnar": "$.outputs"},
    "slices": {"tenant": {"header": "X-Tenant"}},
}
ECHO_ROUTE = {
    "path": "/echo",
    "model": {"name": "echo"},
    "features": {"rows": "$.instances[*]"},
    "predictions": {"fields": {"score": "$.scores[*]"}},
}
RULES = {"max_body_bytes": "64KiB", "routes": [TFS_ROUTE, ECHO_ROUTE]}


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[StandIn, str]]:
    app = StandIn()
    with serve_in_thread(app) as url:
        yield app, url


def _raw(
    client: httpx.Client, method: str, url: str, **kwargs: Any
) -> tuple[int, list[Any], bytes]:
    """Status, headers (in order, as sent) and body bytes as on the wire (no decoding)."""
    with client.stream(method, url, **kwargs) as response:
        body = b"".join(response.iter_raw())
        return response.status_code, response.headers.multi_items(), body


def _rows(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    return [
        {
            "age": int(rng.integers(18, 80)),
            "income": float(rng.lognormal(10, 0.5)),
            "country": str(rng.choice(["DE", "FR", "US", "GB", "ZZ"])),
        }
        for _ in range(n)
    ]


def test_answers_are_byte_identical_to_direct_calls(standin: tuple[StandIn, str]) -> None:
    app, upstream = standin
    rng = np.random.default_rng(1)
    blob = rng.bytes(300_000)

    def chunks() -> Iterator[bytes]:  # a chunked upload, no Content-Length
        for start in range(0, len(blob), 65_536):
            yield blob[start : start + 65_536]

    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/models/churn/versions/1:predict", {"json": {"instances": _rows(rng, 4)}}),
        (
            "POST",
            "/v1/models/churn/versions/1:predict",
            {"json": {"inputs": {"age": [30, 40], "income": [1.0, 2.0], "country": ["DE", "FR"]}}},
        ),
        (
            "POST",
            "/v1/models/churn/versions/1:predict",
            {"content": b'{"instances": [{"age": 1}]}'},
        ),
        ("POST", "/v1/models/churn/versions/1:predict", {"content": b"not json"}),
        ("GET", "/v1/models/churn", {}),
        ("HEAD", "/v1/models/churn", {}),
        ("GET", "/fail", {}),
        ("GET", "/unavailable", {}),
        ("GET", "/text", {}),
        ("GET", "/gzip", {"headers": {"Accept-Encoding": "gzip"}}),
        ("GET", "/stream", {}),
        ("GET", "/nope?x=1&y=%20z", {}),
        ("PUT", "/echo", {"content": blob}),
        ("POST", "/echo", {"content": chunks}),
        ("GET", "/cookies", {"headers": {"Cookie": "mine=1"}}),
        ("GET", "/cookies", {}),  # the proxy must not have kept the previous Set-Cookie
    ]
    with (
        running_proxy(upstream, RULES, gateway="127.0.0.1:9") as proxy,
        httpx.Client(timeout=30) as client,
    ):
        for method, path, kwargs in calls:
            if callable(kwargs.get("content")):
                direct_kwargs = {"content": kwargs["content"]()}
                proxy_kwargs = {"content": kwargs["content"]()}
            else:
                direct_kwargs = proxy_kwargs = kwargs
            direct = _raw(client, method, upstream + path, **direct_kwargs)
            client.cookies.clear()
            via = _raw(client, method, proxy.url + path, **proxy_kwargs)
            client.cookies.clear()
            assert via == direct, (method, path)
        assert _raw(client, "POST", proxy.url + "/echo", content=chunks())[2] == blob
    # What the upstream saw from the proxy is what the client sent, plus trace context.
    sent = [h for h in app.seen_headers if "traceparent" in h]
    assert sent, "the proxy adds traceparent upstream"


def _cumulative(edges: np.ndarray, values: list[float]) -> list[int]:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=len(edges) + 1)
    return [int(c) for c in np.cumsum(counts)]


def _buckets(samples: dict[Any, Any], metric: str, labels: dict[str, str]) -> list[int]:
    """Cumulative bucket counts of one series, in `le` order."""
    found = [
        (float(dict(k[1])["le"]), int(v.value))
        for k, v in samples.items()
        if k[0] == metric + "_bucket"
        and frozenset(labels.items()) <= k[1]
        and len(k[1]) == len(labels) + 1
    ]
    return [count for _, count in sorted(found)]


def test_features_predictions_and_slices_arrive_at_the_gateway(
    standin: tuple[StandIn, str], tmp_path: Path
) -> None:
    _app, upstream = standin
    rng = np.random.default_rng(7)
    training = pd.DataFrame(_rows(rng, 3000))
    training["tenant"] = rng.choice(["acme", "globex"], len(training))
    training["prediction"] = [
        score(a, i, c)
        for a, i, c in zip(training.age, training.income, training.country, strict=True)
    ]
    reference = profile.build(training, model="churn", version="3", predictions=["prediction"])
    path = tmp_path / "reference.json"
    profile.save(reference, path)
    config = loopback_config(
        models=[
            {
                "name": "churn",
                "version": "3",
                "reference": str(path),
                "segments": ["tenant"],
            }
        ]
    )
    sent: list[tuple[str, dict[str, Any]]] = []  # (tenant, row)
    with (
        running_gateway(config) as gateway,
        running_proxy(upstream, RULES, gateway=gateway.grpc_endpoint) as proxy,
        httpx.Client(timeout=30) as client,
    ):
        url = proxy.url + "/v1/models/churn/versions/3:predict"
        for i in range(24):
            tenant = ["acme", "globex", "initech"][i % 3]
            rows = _rows(rng, 8)
            if i % 4 == 3:  # TF Serving's columnar form
                body: dict[str, Any] = {
                    "inputs": {k: [r[k] for r in rows] for k in ("age", "income", "country")}
                }
            elif i % 4 == 2:  # list rows, named by `columns`
                body = {"instances": [[r["age"], r["income"], r["country"]] for r in rows]}
            else:
                body = {"instances": rows}
            response = client.post(url, json=body, headers={"X-Tenant": tenant})
            assert response.status_code == 200
            sent += [(tenant, row) for row in rows]
        proxy.flush()
        samples = gateway.samples()
        counters = proxy.counters()

    base = {"model": "churn", "model_version": "3"}
    ages = [float(r["age"]) for _, r in sent]
    incomes = [float(r["income"]) for _, r in sent]
    predictions = [score(r["age"], r["income"], r["country"]) for _, r in sent]
    for name, values in (("age", ages), ("income", incomes)):
        edges = np.asarray(reference.features[name].edges)  # type: ignore[union-attr]
        got = _buckets(samples, "otelml_feature_value", {**base, "feature": name})
        assert got == _cumulative(edges, values), name
    edges = np.asarray(reference.predictions["prediction"].edges)  # type: ignore[union-attr]
    got = _buckets(samples, "otelml_prediction_value", {**base, "output": "prediction"})
    assert got == _cumulative(edges, predictions)

    known = set(reference.features["country"].categories)  # type: ignore[union-attr]
    countries = [r["country"] for _, r in sent]
    for category in [*known, semconv.OTHER_CATEGORY]:
        labels = {**base, "feature": "country", "category": category}
        expected = (
            sum(c not in known for c in countries)
            if category == semconv.OTHER_CATEGORY
            else countries.count(category)
        )
        key = ("otelml_feature_category_total", frozenset(labels.items()))
        if expected == 0 and category == semconv.OTHER_CATEGORY:
            assert key not in samples  # exposed once something falls into it
        else:
            assert samples[key].value == expected

    # The tenant header is a slice: every series again per tenant (unknown ones: __other__).
    edges = np.asarray(reference.features["age"].edges)  # type: ignore[union-attr]
    for segment_value, members in (
        ("acme", {"acme"}),
        ("globex", {"globex"}),
        (semconv.OTHER_CATEGORY, {"initech"}),
    ):
        labels = {**base, "feature": "age", "segment": "tenant", "segment_value": segment_value}
        got = _buckets(samples, "otelml_segment_feature_value", labels)
        expected_ages = [float(r["age"]) for t, r in sent if t in members]
        assert got == _cumulative(edges, expected_ages), segment_value

    route = frozenset({"route": PREDICT}.items())
    assert counters[("otelml_proxy_rows_total", route)] == len(sent)
    requests = frozenset({"route": PREDICT, "method": "POST", "status": "200"}.items())
    assert counters[("otelml_proxy_requests_total", requests)] == 24
    assert not [k for k in counters if k[0] == "otelml_proxy_extraction_failures_total"]
    calls = {
        (dict(k[1])["span_name"], dict(k[1])["span_kind"]): v.value
        for k, v in samples.items()
        if k[0] == "traces_spanmetrics_calls_total"
    }
    assert calls == {(f"POST {PREDICT}", "SPAN_KIND_SERVER"): 24}


def test_trace_context_is_propagated_upstream(standin: tuple[StandIn, str]) -> None:
    app, upstream = standin
    with (
        running_gateway() as gateway,
        running_proxy(upstream, RULES, gateway=gateway.grpc_endpoint) as proxy,
        httpx.Client(timeout=30) as client,
    ):
        url = proxy.url + "/v1/models/tc/versions/1:predict"
        body = {"instances": [{"age": 30, "income": 1.0, "country": "DE"}]}
        # A client with a trace of its own: the proxy's span continues it.
        trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        before = len(app.seen_headers)
        client.post(
            url,
            json=body,
            headers={"traceparent": f"00-{trace_id}-{parent}-01", "tracestate": "vendor=x"},
        )
        seen = app.seen_headers[before]
        version, seen_trace, seen_parent, _flags = seen["traceparent"].split("-")
        assert (version, seen_trace) == ("00", trace_id)
        assert seen_parent != parent  # the proxy's span is the upstream's parent
        assert seen["tracestate"] == "vendor=x"
        # Without one: a new trace, whose id is the one the gateway keeps as exemplar.
        upstream_traces = set()
        for _ in range(5):
            before = len(app.seen_headers)
            client.post(url, json=body)
            upstream_traces.add(app.seen_headers[before]["traceparent"].split("-")[1])
        assert trace_id not in upstream_traces and len(upstream_traces) == 5
        proxy.flush()
        samples = gateway.samples()
    exemplars = {
        v.exemplar.labels["trace_id"]
        for k, v in samples.items()
        if k[0] == "otelml_feature_value_bucket"
        and v.exemplar is not None
        and ("model", "tc") in k[1]
    }
    assert exemplars and exemplars <= upstream_traces | {trace_id}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_upstream_errors_and_timeouts_pass_through(standin: tuple[StandIn, str]) -> None:
    _app, upstream = standin
    with (
        running_gateway() as gateway,
        running_proxy(upstream, RULES, gateway=gateway.grpc_endpoint, timeout=0.5) as proxy,
        httpx.Client(timeout=30) as client,
    ):
        # Upstream errors are the upstream's answers: passed through as they are.
        for path in ("/fail", "/unavailable", "/nope"):
            assert _raw(client, "GET", proxy.url + path) == _raw(client, "GET", upstream + path)
        bad = b'{"instances": [{"age": "x"}]}'
        url = "/v1/models/churn/versions/1:predict"
        assert _raw(client, "POST", proxy.url + url, content=bad) == _raw(
            client, "POST", upstream + url, content=bad
        )
        # No answer in time: 504 from the proxy.
        status, headers, body = _raw(client, "GET", proxy.url + "/slow")
        assert status == 504
        assert dict(headers)["content-type"] == "application/json"
        assert b"upstream timed out" in body
        proxy.flush()
        samples = gateway.samples()
        counters = proxy.counters()
    errors = {
        (dict(k[1])["span_name"], dict(k[1])["status_code"]): v.value
        for k, v in samples.items()
        if k[0] == "traces_spanmetrics_calls_total"
    }
    assert errors == {
        ("GET", "STATUS_CODE_ERROR"): 3,  # 500, 503, 504
        ("GET", "STATUS_CODE_UNSET"): 1,  # 404 is the client's error, not the server's
        (f"POST {PREDICT}", "STATUS_CODE_UNSET"): 1,  # 400
    }
    timeouts = frozenset({"route": "__unmatched__", "reason": "timeout"}.items())
    assert counters[("otelml_proxy_upstream_errors_total", timeouts)] == 1
    # A failed inference is not extracted: its 400 answer has no predictions to count.
    assert not [k for k in counters if k[0] == "otelml_proxy_extraction_failures_total"]

    # The upstream hangs up in the middle of a body: too late for a status of the proxy's
    # own, so the client's connection is closed too (a truncated answer, never a wrong one).
    with running_proxy(upstream, RULES, gateway="127.0.0.1:9") as proxy:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(proxy.url + "/broken", timeout=30)
        broken = frozenset({"route": "__unmatched__", "reason": "broken"}.items())
        assert proxy.counters()[("otelml_proxy_upstream_errors_total", broken)] == 1

    # No upstream at all: 502 from the proxy, for every route.
    with running_proxy(f"http://127.0.0.1:{_closed_port()}", RULES, gateway="127.0.0.1:9") as proxy:
        response = httpx.post(proxy.url + url, json={"instances": []}, timeout=30)
        assert response.status_code == 502
        assert response.json() == {"error": "otelml proxy: cannot connect to upstream"}
        connects = frozenset({"route": PREDICT, "reason": "connect"}.items())
        assert proxy.counters()[("otelml_proxy_upstream_errors_total", connects)] == 1


def test_bad_input_is_counted_and_never_breaks_the_request(standin: tuple[StandIn, str]) -> None:
    _app, upstream = standin
    bodies = [
        b"not json",  # not_json: request and response (the echo)
        b'{"instances": [{"age": 30}, {"age": "x"}, {"age": 40}], "scores": [0.1, 0.2, 0.3]}',
        b'{"instances": [{"age": 30}], "scores": "high"}',  # scores[*] over a string
        b'{"rows": []}',  # neither instances nor scores
        b'{"instances": [{"age": 1}, {"age": 2}], "scores": [0.5]}',  # 2 rows vs 1
        b"[1, 2]",  # JSON, but no object: both paths mistyped
        b'{"instances": [{"age": 5}], "pad": "' + b"x" * 70_000 + b'"}',  # past 64KiB
    ]
    with (
        running_gateway() as gateway,
        running_proxy(upstream, RULES, gateway=gateway.grpc_endpoint) as proxy,
        httpx.Client(timeout=30) as client,
    ):
        for body in bodies:
            status, _headers, answer = _raw(client, "POST", proxy.url + "/echo", content=body)
            assert (status, answer) == (201, body)
        proxy.flush()
        failures = proxy.failures("/echo")
        samples = gateway.samples()
    assert failures == {
        "not_json": 2,
        "wrong_type": 1 + 1 + 2,
        "missing_field": 2,
        "row_mismatch": 1,
        "too_large": 2,
    }
    base = {"model": "echo", "model_version": ""}
    missing = ("otelml_feature_missing_total", frozenset({**base, "feature": "age"}.items()))
    assert samples[missing].value == 1  # the "x", sent as null
    inf = {**base, "feature": "age", "le": "+Inf"}
    assert samples[("otelml_feature_value_bucket", frozenset(inf.items()))].value == 5


def test_requests_succeed_with_the_gateway_away(
    standin: tuple[StandIn, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _app, upstream = standin
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    body = {"instances": [{"age": 30, "income": 1.0, "country": "DE"}]}
    url = "/v1/models/churn/versions/1:predict"
    with running_proxy(upstream, RULES, gateway=f"127.0.0.1:{_closed_port()}") as proxy:
        with httpx.Client(timeout=30) as client:
            direct = client.post(upstream + url, json=body).content
            for _ in range(30):
                response = client.post(proxy.url + url, json=body)
                assert (response.status_code, response.content) == (200, direct)
        failed = ("otelml_proxy_spans_export_failed_total", frozenset[tuple[str, str]]())
        deadline = time.monotonic() + 30
        while proxy.counters()[failed] < 30 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proxy.counters()[failed] == 30
        assert proxy.counters()[("otelml_proxy_spans_exported_total", frozenset())] == 0


def test_admin_port_serves_health_and_metrics(standin: tuple[StandIn, str]) -> None:
    _, upstream = standin
    with running_proxy(upstream, RULES, gateway="127.0.0.1:9") as proxy:
        assert httpx.get(proxy.admin_url + "/healthz").text == "ok\n"
        text = httpx.get(proxy.admin_url + "/metrics").text
        assert "# TYPE otelml_proxy_requests_total counter" in text
        # The proxied port has no path of its own: /metrics there is the upstream's.
        assert httpx.get(proxy.url + "/metrics").status_code == 404


def test_unmatched_requests_can_go_untraced(standin: tuple[StandIn, str]) -> None:
    app, upstream = standin
    rules = {**RULES, "trace_unmatched": False}
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with (
        running_gateway() as gateway,
        running_proxy(upstream, rules, gateway=gateway.grpc_endpoint) as proxy,
    ):
        before = len(app.seen_headers)
        httpx.get(proxy.url + "/v1/models/churn", headers={"traceparent": traceparent})
        # Untouched: the client's own context reaches the upstream as it was sent.
        assert app.seen_headers[before]["traceparent"] == traceparent
        httpx.post(proxy.url + "/echo", content=b'{"instances": [{"age": 3}]}')
        proxy.flush()
        samples = gateway.samples()
    calls = {
        dict(k[1])["span_name"]: v.value
        for k, v in samples.items()
        if k[0] == "traces_spanmetrics_calls_total"
    }
    assert calls == {"POST /echo": 1}


def test_a_client_leaving_mid_body_aborts_the_upstream_request(
    standin: tuple[StandIn, str],
) -> None:
    app, upstream = standin
    with running_proxy(upstream, RULES, gateway="127.0.0.1:9") as proxy:
        before = len(app.seen_headers)
        with socket.create_connection(("127.0.0.1", proxy.ports.proxy)) as client:
            client.sendall(
                b"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            )
            time.sleep(0.3)  # the first chunk is on its way upstream
        closed = (
            "otelml_proxy_requests_total",
            frozenset({"route": "__unmatched__", "method": "PUT", "status": "499"}.items()),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (app.cut_bodies and proxy.counters().get(closed)):
            time.sleep(0.05)
        # The upstream saw a request that ended before its body: never a complete "hello".
        assert app.cut_bodies == [b"hello"]
        assert len(app.seen_headers) == before
        assert proxy.counters()[closed] == 1
