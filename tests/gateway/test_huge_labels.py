"""Label values are bounded: 5 MiB span names, category values and feature names are cut to
`limits.max_label_length` (256) before they become labels, and counted.

It was 20 such requests → a 2.2 GB /metrics, 38 s per scrape."""

from __future__ import annotations

import time

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelml import semconv
from tests.conftest import loopback_config, running_gateway

HUGE = 5 << 20
REQUESTS = 20
#: The exposition after the attack, at most (every label value ≤ 256 characters).
MAX_EXPOSITION_BYTES = 512 << 10


def _huge(i: int) -> bytes:
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=(i + 1).to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
            name=chr(ord("a") + i) * HUGE,
            end_time_unix_nano=10**18,
        )
    )
    span.attributes.add(key=semconv.MODEL_NAME).value.string_value = "m"
    span.attributes.add(key=semconv.FEATURE_PREFIX + "colour").value.string_value = (
        chr(ord("A") + i) * HUGE
    )
    span.attributes.add(key=semconv.FEATURE_PREFIX + "n" * HUGE).value.double_value = 1.0
    return request.SerializeToString()


def test_huge_names_and_categories_are_cut_and_counted() -> None:
    with running_gateway(loopback_config()) as gw:
        for i in range(REQUESTS):
            response = httpx.post(
                f"{gw.http_url}/v1/traces",
                content=_huge(i),
                headers={"Content-Type": "application/x-protobuf"},
                timeout=30,
            )
            assert response.status_code == 200
        started = time.monotonic()
        exposition = gw.scrape()
        scraped_in = time.monotonic() - started
        samples = gw.samples()
    assert len(exposition.encode()) < MAX_EXPOSITION_BYTES
    assert scraped_in < 2.0
    assert f'span_name="{"t" * 256}"' in exposition
    assert f'category="{"T" * 256}"' in exposition
    assert f'feature="{"n" * (256 - len(semconv.FEATURE_PREFIX))}"' in exposition
    truncated = {
        dict(labels)["field"]: sample.value
        for (name, labels), sample in samples.items()
        if name == f"{semconv.RECEIVER_TRUNCATED}_total"
    }
    assert truncated == {"span_name": REQUESTS, "value": REQUESTS, "key": REQUESTS}
