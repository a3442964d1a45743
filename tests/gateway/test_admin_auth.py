"""The admin port: /metrics behind `auth.admin_bearer_token` when set (it carries trace ids
and names); /healthz and /readyz open for probes."""

from __future__ import annotations

import httpx

from tests.conftest import loopback_config, running_gateway


def test_metrics_require_the_admin_token_and_probes_stay_open() -> None:
    config = loopback_config(auth={"admin_bearer_token": "scrape-secret"})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.admin_url, timeout=10) as client:
        anonymous = client.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": "bearer scrape-secret"})
        assert scraped.status_code == 200
        assert "otelml_receiver_accepted_spans_total" in scraped.text
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        # The OTLP receivers do not take the admin token (auth.bearer_token is unset: open).
        assert gw.gateway.guard.authorized(None)
