"""Grafana's provisioning (one set of files for the chart and Compose): it parses, every
datasource uid a link or a panel names exists, the environment expands as Grafana expands it,
the dashboards are what their code builds, and the Loki → Tempo derived field finds the trace id
of a log record exactly as the gateway forwards it to Loki's OTLP endpoint."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.conftest import loopback_config, running_gateway
from tests.deploy import queries
from tests.deploy.provisioning import GRAFANA, PROVIDERS, URLS, datasources, grafana_expand
from tests.sinks import HttpSink


def linked_uids(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasourceUid":
                yield item
            else:
                yield from linked_uids(item)
    elif isinstance(value, list):
        for item in value:
            yield from linked_uids(item)


def test_datasources_have_fixed_uids_and_every_link_names_one_of_them() -> None:
    sources = datasources()
    assert {uid: d["type"] for uid, d in sources.items()} == {
        "prometheus": "prometheus",
        "loki": "loki",
        "tempo": "tempo",
    }
    links = {uid: sorted(set(linked_uids(d["jsonData"]))) for uid, d in sources.items()}
    assert links == {"prometheus": ["tempo"], "loki": ["tempo"], "tempo": ["loki", "prometheus"]}
    assert [d["url"] for d in sources.values()] == list(URLS.values())


def test_links_expand_to_grafana_variables_not_to_the_environment() -> None:
    sources = datasources()
    (derived,) = sources["loki"]["jsonData"]["derivedFields"]
    assert derived == {
        "name": "TraceID",
        "matcherType": "label",
        "matcherRegex": "trace_id",
        "datasourceUid": "tempo",
        "url": "${__value.raw}",
        "urlDisplayLabel": "Open trace",
    }
    tempo = sources["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["query"] == '{${__tags}} | trace_id="${__trace.traceId}"'
    assert tempo["tracesToLogsV2"]["tags"] == [{"key": "service.name", "value": "service_name"}]
    for query in tempo["tracesToMetrics"]["queries"]:
        assert "{$__tags" in query["query"] and "traces_spanmetrics_" in query["query"]
    (exemplar,) = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplar["name"] == "trace_id"  # the label of the gateway's exemplars


def test_traces_to_metrics_queries_select_the_gateways_span_metrics() -> None:
    """With $__tags expanded as Grafana does for a span of service churn-svc."""
    tempo = datasources()["tempo"]["jsonData"]["tracesToMetrics"]
    for query in tempo["queries"]:
        expr = query["query"].replace("$__tags", 'service="churn-svc"')
        for selector in queries.selectors(expr):
            assert queries.matcher_labels(selector) <= {"service", "status_code"}
            assert selector.split("{")[0] in (
                "traces_spanmetrics_calls_total",
                "traces_spanmetrics_latency_bucket",
            )


def test_every_panel_names_a_provisioned_datasource() -> None:
    sources = datasources()
    for path in queries.dashboard_files():
        dashboard = queries.load_dashboard(path)
        for panel in queries.panels(dashboard):
            if panel["type"] == "row":
                continue
            for item in [panel, *panel["targets"]]:
                ds = item["datasource"]
                assert sources[ds["uid"]]["type"] == ds["type"], (path.name, panel["title"])
        for variable in dashboard["templating"]["list"]:
            if "datasource" in variable:
                assert variable["datasource"]["uid"] in sources


def test_dashboards_are_what_their_code_builds() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dashboards", GRAFANA / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.render()
    on_disk = {p.name: p.read_text() for p in queries.dashboard_files()}
    assert built == on_disk, "run: python deploy/grafana/dashboards.py"
    uids = [queries.load_dashboard(p)["uid"] for p in queries.dashboard_files()]
    assert sorted(uids) == ["otelml-gateway", "otelml-model-drift", "otelml-model-service"]


def test_the_dashboard_provider_reads_the_mounted_folder() -> None:
    document = yaml.safe_load(grafana_expand(PROVIDERS.read_text(), {}))
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/otelml"


def _loki_structured_metadata(
    request: logs_service_pb2.ExportLogsServiceRequest,
) -> list[dict[str, str]]:
    """What Loki 3's OTLP endpoint stores per record beside the line: trace_id and span_id as
    lowercase hex (pcommon's String()), and the resource's service.name as service_name."""
    stored = []
    for resource_logs in request.resource_logs:
        service = next(
            a.value.string_value
            for a in resource_logs.resource.attributes
            if a.key == "service.name"
        )
        for scope in resource_logs.scope_logs:
            for record in scope.log_records:
                stored.append(
                    {
                        "service_name": service,
                        "trace_id": record.trace_id.hex(),
                        "span_id": record.span_id.hex(),
                        "line": record.body.string_value,
                    }
                )
    return stored


def _derive(field: dict[str, Any], entry: dict[str, str]) -> str | None:
    """Grafana's derived field: `label` matches a label or structured-metadata key by name,
    `regex` (the default) takes a regex's first group over the line; the value fills the URL."""
    if field.get("matcherType", "regex") == "label":
        value = entry.get(field["matcherRegex"])
    else:
        match = re.search(field["matcherRegex"], entry["line"])
        value = match.group(1) if match else None
    return None if value is None else field["url"].replace("${__value.raw}", value)


def test_the_derived_field_opens_the_trace_of_a_forwarded_log_record(tmp_path: Path) -> None:
    loki = HttpSink()
    config = loopback_config(
        exporters={"logs": {"endpoint": loki.url}}, queue={"directory": str(tmp_path / "queue")}
    )
    resource = Resource.create({"service.name": "churn-svc"})
    try:
        with running_gateway(config) as gateway:
            logs = LoggerProvider(resource=resource)
            logs.add_log_record_processor(
                SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{gateway.http_url}/v1/logs"))
            )
            tracer = TracerProvider(resource=resource).get_tracer("test")
            sent = []
            for i in range(3):
                with tracer.start_as_current_span("predict") as span:
                    logs.get_logger("svc").emit(
                        body=f"scored {i}", severity_number=SeverityNumber.INFO
                    )
                    sent.append(format(span.get_span_context().trace_id, "032x"))
            logs.shutdown()
            deadline = time.monotonic() + 30
            while len(loki.log_records) < 3:
                assert time.monotonic() < deadline, "the gateway forwarded no logs"
                time.sleep(0.1)
    finally:
        loki.stop()
    stored = [
        entry
        for raw in loki.raw
        for entry in _loki_structured_metadata(
            logs_service_pb2.ExportLogsServiceRequest.FromString(raw)
        )
    ]
    (field,) = datasources()["loki"]["jsonData"]["derivedFields"]
    assert [_derive(field, entry) for entry in stored] == sent
    assert {entry["service_name"] for entry in stored} == {"churn-svc"}
    # The model-service dashboard's logs panel selects exactly these streams.
    dashboard = queries.load_dashboard(queries.DASHBOARDS / "otelml-model-service.json")
    (logs_panel,) = [p for p in dashboard["panels"] if p["type"] == "logs"]
    assert logs_panel["targets"][0]["expr"].replace("$service", "churn-svc") == (
        '{service_name="churn-svc"}'
    )
