"""bentoml.monitor records (columns in a map body, schema in bento_meta) → ml.* records."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otelml import semconv
from otelml.gateway.decode.bentoml_monitor import BentoMonitorReader
from tests.conftest import running_gateway

SCHEMA = {
    "sepal_length": {"name": "sepal_length", "role": "feature", "type": "numerical"},
    "color": {"name": "color", "role": "feature", "type": "categorical"},
    "pred": {"name": "pred", "role": "prediction", "type": "categorical"},
}


def _any(value: Any) -> AnyValue:
    if isinstance(value, dict):
        return AnyValue(
            kvlist_value=KeyValueList(
                values=[KeyValue(key=k, value=_any(v)) for k, v in value.items()]
            )
        )
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    return AnyValue(double_value=value)


def _monitor_record(row: dict[str, Any], trace_id: int, meta: bool, binary_id: bool) -> LogRecord:
    body = {**row, "timestamp": time.time(), "request_id": "42", "trace_id": str(trace_id)}
    if meta:
        body["bento_meta"] = {
            "bento_name": "iris",
            "bento_version": "not available",
            "monitor_name": "iris_prediction",
            "schema": SCHEMA,
        }
    return LogRecord(
        time_unix_nano=time.time_ns(),
        body=_any(body),
        trace_id=trace_id.to_bytes(16, "big") if binary_id else b"",
    )


def _request(records: list[LogRecord], service: str = "iris:iris_prediction") -> bytes:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    resource_logs.scope_logs.add().log_records.extend(records)
    return request.SerializeToString()


ROWS = [
    {"sepal_length": 5.1, "color": "red", "pred": "setosa"},
    {"sepal_length": 6.3, "color": "blue", "pred": "virginica"},
    {"sepal_length": 5.9, "color": "red", "pred": "versicolor"},
]


def test_monitor_records_become_ml_records_with_hex_trace_ids() -> None:
    reader = BentoMonitorReader()
    trace_id = 12345678901234567890123456789
    payload = _request([_monitor_record(ROWS[0], trace_id, meta=True, binary_id=False)])
    rewritten = ExportLogsServiceRequest.FromString(reader.rewrite(payload) or b"")
    (record,) = rewritten.resource_logs[0].scope_logs[0].log_records
    assert record.trace_id.hex() == format(trace_id, "032x")
    attributes = {kv.key: kv.value for kv in record.attributes}
    assert attributes[semconv.MODEL_NAME].string_value == "iris_prediction"
    assert semconv.MODEL_VERSION not in attributes  # "not available"
    assert attributes[semconv.FEATURE_PREFIX + "sepal_length"].double_value == 5.1
    assert attributes[semconv.FEATURE_PREFIX + "color"].string_value == "red"
    assert attributes[semconv.PREDICTION_PREFIX + "pred"].string_value == "setosa"
    assert len(attributes) == 4  # timestamp, request_id, trace_id, bento_meta are not features


def test_other_logs_are_not_parsed_and_unknown_monitors_are_counted() -> None:
    reader = BentoMonitorReader()
    plain = LogRecord(body=AnyValue(string_value="hello"))
    assert reader.rewrite(_request([plain])) is None
    no_schema = _monitor_record(ROWS[0], 7, meta=False, binary_id=True)
    assert reader.rewrite(_request([no_schema])) is None  # nothing says it is a monitor yet
    assert reader.rewrite(_request([no_schema, _monitor_record(ROWS[1], 8, True, True)]))
    assert reader.counts == {"read": 1, "unread": 1}


def test_gateway_reads_monitor_records_and_remembers_schemas() -> None:
    with running_gateway() as gw:
        import httpx

        first = [
            _monitor_record(row, 100 + i, meta=True, binary_id=True) for i, row in enumerate(ROWS)
        ]
        later = [
            _monitor_record(row, 200 + i, meta=False, binary_id=True) for i, row in enumerate(ROWS)
        ]
        for records in (first, later):  # later ones: sampled-out meta, schema remembered
            response = httpx.post(
                f"{gw.http_url}/v1/logs",
                content=_request(records),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert response.status_code == 200
        samples = gw.samples()

    def value(name: str, **labels: str) -> float:
        key = frozenset({"model": "iris_prediction", "model_version": "", **labels}.items())
        return float(samples[(name, key)].value)

    assert value("otelml_feature_value_bucket", feature="sepal_length", le="+Inf") == 6
    assert value("otelml_feature_category_total", feature="color", category="red") == 4
    assert value("otelml_feature_category_total", feature="color", category="blue") == 2
    assert value("otelml_prediction_class_total", output="pred", **{"class": "setosa"}) == 2
    read = samples[("otelml_bentoml_monitor_records_total", frozenset({("outcome", "read")}))]
    assert read.value == 6
    accepted = samples[
        ("otelml_receiver_accepted_log_records_total", frozenset({("transport", "http")}))
    ]
    assert accepted.value == 6
