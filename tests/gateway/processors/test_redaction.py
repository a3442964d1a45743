"""Canary PII in attributes and log bodies never reaches a sink, /metrics, exemplars or logs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from otelml import semconv
from otelml.gateway.processors.redaction import Redactor, luhn_valid
from tests.conftest import loopback_config, running_gateway
from tests.gateway.otlp_builders import logs, traces
from tests.sinks import GrpcSink, HttpSink

EMAIL = "jane.canary@example.com"
CARD = "4111 1111 1111 1111"
TOKEN = "Bearer sk_live_canary_5f3c9a"
CANARIES = [EMAIL, CARD, "4111-1111-1111-1111", "sk_live_canary_5f3c9a", "canary-secret-key"]


def test_canaries_never_leave_the_gateway(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tempo, loki = GrpcSink(), HttpSink()
    config = loopback_config(
        exporters={
            "traces": {"endpoint": tempo.endpoint, "protocol": "grpc"},
            "logs": {"endpoint": loki.url, "protocol": "http/protobuf"},
        },
        queue={"directory": str(tmp_path / "queue")},
        redaction={"enabled": True, "allow_keys": ["ml.*", "service.name", "http.*"]},
    )
    try:
        with running_gateway(config) as gw:
            import httpx

            spans = [
                {
                    semconv.MODEL_NAME: "r",
                    semconv.FEATURE_PREFIX + "contact": EMAIL,  # a feature value
                    semconv.FEATURE_PREFIX + "amount": 12.5,
                    "http.url": f"https://shop/pay?card={CARD}",
                    "user.secret": "canary-secret-key",  # not allowed: removed whole
                    "http.request.header.authorization": [TOKEN, "ok"],
                }
            ] * 3
            for body, path in (
                (traces(spans), "/v1/traces"),
                (logs([{semconv.MODEL_NAME: "r", "note": EMAIL}]), "/v1/logs"),
            ):
                response = httpx.post(
                    f"{gw.http_url}{path}",
                    content=body,
                    headers={"Content-Type": "application/x-protobuf"},
                )
                assert response.status_code == 200
            # and a log body
            from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
                ExportLogsServiceRequest,
            )

            request = ExportLogsServiceRequest.FromString(logs([{semconv.MODEL_NAME: "r"}]))
            record = request.resource_logs[0].scope_logs[0].log_records[0]
            record.body.string_value = f"paid with 4111-1111-1111-1111 by {EMAIL}, {TOKEN}"
            httpx.post(
                f"{gw.http_url}/v1/logs",
                content=request.SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            deadline = time.monotonic() + 20
            while len(tempo.spans) < 3 or len(loki.log_records) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            exposition = gw.scrape()
            samples = gw.samples()
        everything = b"".join(tempo.raw + loki.raw) + exposition.encode() + caplog.text.encode()
        for canary in CANARIES:
            assert canary.encode() not in everything, canary
        # What replaced them is visible, and the allowed, harmless data is intact.
        assert b"[REDACTED:email]" in b"".join(tempo.raw)
        assert b"[REDACTED:card]" in b"".join(loki.raw)
        assert b"[REDACTED:bearer]" in b"".join(loki.raw + tempo.raw)
        assert b"user.secret" not in b"".join(tempo.raw)
        assert b"ml.feature.amount" in b"".join(tempo.raw)
        category = {
            "model": "r",
            "model_version": "",
            "feature": "contact",
            "category": "[REDACTED:email]",
        }
        assert samples[("otelml_feature_category_total", frozenset(category.items()))].value == 3
        # 3 × user.secret, and the log attribute "note" (not an allowed key)
        assert samples[("otelml_redaction_removed_attributes_total", frozenset())].value == 4
        assert (
            samples[
                ("otelml_redaction_values_total", frozenset({"pattern": "email"}.items()))
            ].value
            == 4  # 3 spans + the log body (the log attribute "note" was removed whole)
        )
    finally:
        tempo.stop()
        loki.stop()


def test_hashing_is_stable_and_luhn_guards_cards() -> None:
    redactor = Redactor(action="hash")
    first = redactor.text(f"mail {EMAIL}")
    assert first == redactor.text(f"mail {EMAIL}") and EMAIL not in first
    assert first.startswith("mail [HASHED:email:")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert Redactor().text("order 1234 5678 9012 3456") == "order 1234 5678 9012 3456"
