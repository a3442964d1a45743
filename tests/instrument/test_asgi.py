"""The lean server-span middleware side by side with opentelemetry-instrumentation-fastapi:
the same requests through two copies of one app give spans with the same name, kind, status,
HTTP attributes and parent, in each semantic-convention mode; trace context goes in and out."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import propagate
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from otelml.instrument.asgi import ServerSpanMiddleware
from otelml.instrument.fastapi import instrument

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


class Row(BaseModel):
    a: float


class Scored(BaseModel):
    p: float


def _scope(span: ReadableSpan) -> str:
    assert span.instrumentation_scope is not None
    return span.instrumentation_scope.name


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/predict/{model}")
    def predict(model: str, row: Row) -> Scored:
        return Scored(p=row.a * 2)

    @app.get("/context")
    def context() -> dict[str, str]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # what an outgoing call from the handler would carry
        return carrier

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("model failed")

    return app


REQUESTS: list[dict[str, Any]] = [
    {"method": "POST", "url": "/predict/churn?debug=1&sig=secret", "json": {"a": 1.5}},
    {"method": "POST", "url": "/predict/churn", "content": b"{not json", "headers": {}},
    {"method": "GET", "url": "/nothing-here"},
    {"method": "GET", "url": "/boom"},
    {"method": "GET", "url": "/context", "headers": {"traceparent": PARENT}},
    {
        "method": "POST",
        "url": "/predict/x",
        "json": {"a": 2.0},
        "headers": {"user-agent": "Googlebot/2.1"},
    },
    {"method": "PROPFIND", "url": "/predict/x"},
]


async def drive(app: FastAPI) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.1.2.3", 5123))
    async with httpx.AsyncClient(transport=transport, base_url="http://model.local:8000") as client:
        answers = []
        for request in REQUESTS:
            options = dict(request)
            headers = {"user-agent": "tests/1.0", **options.pop("headers", {})}
            answers.append(await client.request(headers=headers, **options))
        return answers


def spans_of(tracing: str) -> tuple[list[ReadableSpan], list[httpx.Response]]:
    import asyncio

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = make_app()
    instrument(app, model="m", tracer_provider=provider, tracing=tracing)  # type: ignore[arg-type]
    answers = asyncio.run(drive(app))
    return list(exporter.get_finished_spans()), answers


def comparable(span: ReadableSpan) -> dict[str, Any]:
    attributes = {k: v for k, v in (span.attributes or {}).items() if not k.startswith("ml.")}
    return {
        "name": span.name,
        "kind": span.kind,
        "status": (span.status.status_code, span.status.description),
        "attributes": attributes,
        "parent": None if span.parent is None else (span.parent.trace_id, span.parent.span_id),
        "trace_id": span.context.trace_id if span.parent is not None else None,
        "events": [e.name for e in span.events],
    }


def test_lean_spans_carry_what_the_fastapi_instrumentation_writes() -> None:
    lean, lean_answers = spans_of("lean")
    otel, otel_answers = spans_of("opentelemetry")
    assert [a.status_code for a in lean_answers] == [200, 422, 404, 500, 200, 200, 405]
    assert [a.status_code for a in otel_answers] == [a.status_code for a in lean_answers]
    assert len(lean) == len(otel) == len(REQUESTS)  # one SERVER span per request, no children
    assert [_scope(s) for s in lean] == ["otelml.instrument.asgi"] * len(lean)
    for mine, theirs in zip(lean, otel, strict=True):
        assert comparable(mine) == comparable(theirs)
    first = lean[0].attributes or {}
    assert first["http.route"] == "/predict/{model}"
    assert first["http.status_code"] == 200
    assert first["http.url"] == "http://model.local:8000/predict/churn?debug=1&sig=REDACTED"
    assert first["ml.model.name"] == "m"  # record() wrote on the lean span
    assert lean[3].status.status_code.name == "ERROR"
    assert [e.name for e in lean[3].events] == ["exception"]


def test_trace_context_in_and_out() -> None:
    lean, answers = spans_of("lean")
    span = lean[4]
    assert span.parent is not None and span.parent.is_remote
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent.span_id == 0xB7AD6B7169203331
    # inside the handler the lean span is current: outgoing calls continue this trace
    assert answers[4].json()["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"


MODES_SCRIPT = textwrap.dedent(
    """
    import json
    from tests.instrument.test_asgi import comparable, spans_of
    lean, _ = spans_of("lean")
    otel, _ = spans_of("opentelemetry")
    same = [comparable(a) == comparable(b) for a, b in zip(lean, otel)]
    keys = sorted(set().union(*(s.attributes or {} for s in lean)))
    print(json.dumps({"same": same, "count": [len(lean), len(otel)], "keys": keys}))
    """
)


@pytest.mark.parametrize("opt_in", ["http", "http/dup"])
def test_new_and_duplicated_semantic_conventions_match_too(opt_in: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OTEL_SEMCONV_STABILITY_OPT_IN": opt_in}
    out = subprocess.run(
        [sys.executable, "-c", MODES_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["count"] == [len(REQUESTS)] * 2
    assert result["same"] == [True] * len(REQUESTS)
    assert "http.response.status_code" in result["keys"]
    assert ("http.status_code" in result["keys"]) == (opt_in == "http/dup")


def test_middleware_alone_traces_any_asgi_app() -> None:
    import asyncio

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = ServerSpanMiddleware(plain, provider)

    async def call() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as client:
            return (await client.delete("/x")).status_code

    assert asyncio.run(call()) == 204
    (span,) = exporter.get_finished_spans()
    assert span.name == "DELETE"
    assert (span.attributes or {})["http.status_code"] == 204
    assert "http.route" not in (span.attributes or {})


def fastapi_with_native_telemetry(provider: TracerProvider) -> FastAPI:
    app = FastAPI(telemetry={"tracer_provider": provider})

    @app.post("/predict/{model}")
    def predict(model: str, row: Row) -> Scored:
        return Scored(p=row.a * 2)

    return app


@pytest.mark.parametrize("tracing", ["lean", "fastapi"])
def test_fastapis_own_telemetry_is_replaced_or_kept(tracing: str) -> None:
    import asyncio

    if "telemetry" not in FastAPI.__init__.__code__.co_varnames:
        pytest.skip("this FastAPI has no built-in telemetry")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = fastapi_with_native_telemetry(provider)
    instrument(app, model="m", tracer_provider=provider, tracing=tracing)  # type: ignore[arg-type]

    async def call() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as client:
            return (await client.post("/predict/a", json={"a": 1.0})).status_code

    assert asyncio.run(call()) == 200
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind.name == "SERVER"]
    assert len(servers) == 1
    recorded = [s for s in spans if (s.attributes or {}).get("ml.model.name") == "m"]
    assert len(recorded) == 1
    if tracing == "lean":
        assert len(spans) == 1 and _scope(servers[0]) == "otelml.instrument.asgi"
    else:  # FastAPI's own server span, its operation spans; ml.* on the one current then
        assert _scope(servers[0]) != "otelml.instrument.asgi"
        assert (servers[0].attributes or {})["http.route"] == "/predict/{model}"
        assert recorded[0].context.trace_id == servers[0].context.trace_id
