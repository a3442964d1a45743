"""A real Prometheus scrapes the gateway: counts queryable, exemplars open the traces we sent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelml import semconv
from otelml.gateway.state.distributions import default_edges
from tests.conftest import running_gateway
from tests.prometheus_server import running_prometheus


def test_prometheus_queries_counts_and_exemplars(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(3.0, 2.0, 300)
    sent_traces: dict[str, float] = {}
    start = time.time() - 5
    with running_gateway() as gw:
        provider = TracerProvider(resource=Resource.create({"service.name": "scrape-svc"}))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=gw.grpc_endpoint, insecure=True))
        )
        tracer = provider.get_tracer("test")
        for value in values.tolist():
            attributes = {
                semconv.MODEL_NAME: "scrape",
                semconv.MODEL_VERSION: "1",
                semconv.FEATURE_PREFIX + "x": value,
            }
            with tracer.start_as_current_span("predict", attributes=attributes) as span:
                sent_traces[format(span.get_span_context().trace_id, "032x")] = value
        assert provider.force_flush(10_000)
        provider.shutdown()

        with running_prometheus(tmp_path, [f"127.0.0.1:{gw.ports.admin}"]) as prometheus:
            selector = 'otelml_feature_value_bucket{model="scrape",feature="x"'
            result = prometheus.wait_for(
                selector + ',le="+Inf"}', lambda r: len(r) == 1 and r[0]["value"][1] == "300"
            )
            assert result[0]["metric"]["model_version"] == "1"

            # Every bucket's count equals numpy's count of the same values on the same edges.
            edges = np.asarray(default_edges())
            expected = np.cumsum(
                np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
            )
            series = prometheus.query(selector + "}")
            by_le = {float(s["metric"]["le"]): int(s["value"][1]) for s in series}
            assert [by_le[float(e)] for e in edges] + [by_le[float("inf")]] == expected.tolist()

            exemplars = prometheus.query_exemplars(selector + "}", start, time.time() + 5)
            found = [e for group in exemplars for e in group["exemplars"]]
            assert found, exemplars
            for exemplar in found:
                trace_id = exemplar["labels"]["trace_id"]
                assert trace_id in sent_traces
                assert float(exemplar["value"]) == sent_traces[trace_id]
            # One exemplar per non-empty bucket at least (Prometheus keeps each scrape's).
            le_with_exemplar = {float(g["seriesLabels"]["le"]) for g in exemplars}
            nonempty = {
                float(le)
                for le, n in zip([*edges, np.inf], np.diff(np.r_[0, expected]), strict=True)
                if n
            }
            assert le_with_exemplar == nonempty
