"""The HTTP receiver's checks: the same for the OTLP paths and POST /v1/ground_truth."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import loopback_config, running_gateway

TRUTH = [{"prediction_id": "p1", "value": 1.0}]
JOINING = [{"name": "m", "ground_truth": {}}]


def _refusals(samples: dict[Any, Any]) -> dict[str, float]:
    name = "otelml_receiver_requests_refused_total"
    return {
        dict(labels)["reason"]: sample.value
        for (sample_name, labels), sample in samples.items()
        if sample_name == name
    }


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/ground_truth"])
def test_every_endpoint_refuses_the_same_way_and_counts_why(path: str) -> None:
    config = loopback_config(auth={"bearer_token": "secret"}, models=JOINING)
    with running_gateway(config) as gw, httpx.Client(base_url=gw.http_url, timeout=10) as client:
        json = {"Content-Type": "application/json"}
        token = {"Authorization": "Bearer secret"}
        # Without the token every request is 401 first: it learns nothing of the endpoint.
        assert client.get(path).status_code == 401
        assert (
            client.post(path, content=b"[]", headers={"Content-Type": "text/csv"}).status_code
            == 401
        )
        anonymous = client.post(path, content=b"[]", headers=json)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers=token).status_code == 405
        csv = client.post(path, content=b"[]", headers={"Content-Type": "text/csv", **token})
        assert csv.status_code == 415
        brotli = client.post(
            path, content=b"[]", headers={**json, **token, "Content-Encoding": "br"}
        )
        assert brotli.status_code == 415
        # RFC 7235: the scheme is case-insensitive.
        lower = client.post(path, content=b"[]", headers={**json, "Authorization": "bearer secret"})
        assert lower.status_code not in (401, 405, 415)
        assert _refusals(gw.samples()) == {
            "method_not_allowed": 1,
            "unsupported_media_type": 1,
            "unsupported_encoding": 1,
            "unauthenticated": 3,
        } | ({"malformed": 1} if path == "/v1/traces" else {})


def test_ground_truth_is_admitted_like_any_request() -> None:
    # A memory limit the process is always over: every request is shed with a retry hint.
    config = loopback_config(limits={"memory_limit": 1}, models=JOINING)
    with running_gateway(config) as gw:
        shed = httpx.post(f"{gw.http_url}/v1/ground_truth", json=TRUTH, timeout=10)
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        assert _refusals(gw.samples()) == {"refused": 1}
    with running_gateway(loopback_config(models=JOINING)) as gw:
        accepted = httpx.post(f"{gw.http_url}/v1/ground_truth", json=TRUTH, timeout=10)
        assert (accepted.status_code, accepted.json()) == (200, {"accepted": 1})
        waiting = gw.samples()[
            ("otelml_ground_truth_waiting", frozenset({("side", "ground_truth")}))
        ]
        assert waiting.value == 1
