"""TLS on both receivers, with client certificates (mutual TLS): real SDK clients get in,
clients without a certificate do not."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelml import semconv
from otelml.config import parse
from tests import tls_certs
from tests.conftest import running_gateway
from tests.gateway.otlp_builders import traces


def test_mutual_tls_on_both_receivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests (under the SDK's HTTP exporter) would trust these bundles instead of our CA.
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(variable, raising=False)
    certs = tls_certs.make(tmp_path)
    tls = {
        "cert_file": str(certs.server_cert),
        "key_file": str(certs.server_key),
        "client_ca_file": str(certs.ca),
    }
    config = parse(
        {
            "receivers": {
                "otlp": {
                    "grpc": {"endpoint": "127.0.0.1:0", "tls": tls},
                    "http": {"endpoint": "127.0.0.1:0", "tls": tls},
                }
            },
            "admin": {"endpoint": "127.0.0.1:0"},
        }
    )
    with running_gateway(config) as gw:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=certs.ca.read_bytes(),
            private_key=certs.client_key.read_bytes(),
            certificate_chain=certs.client_cert.read_bytes(),
        )
        for exporter in (
            GrpcExporter(
                endpoint=f"127.0.0.1:{gw.ports.grpc}", insecure=False, credentials=credentials
            ),
            HttpExporter(
                endpoint=f"https://127.0.0.1:{gw.ports.http}/v1/traces",
                certificate_file=str(certs.ca),
                client_certificate_file=str(certs.client_cert),
                client_key_file=str(certs.client_key),
            ),
        ):
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            with provider.get_tracer("t").start_as_current_span(
                "p", attributes={semconv.MODEL_NAME: "tls", semconv.FEATURE_PREFIX + "x": 1.0}
            ):
                pass
            provider.shutdown()
        samples = gw.samples()
        payload = traces([{semconv.MODEL_NAME: "tls"}])
        # No client certificate: the TLS handshake fails.
        with pytest.raises(httpx.HTTPError):
            httpx.post(
                f"https://127.0.0.1:{gw.ports.http}/v1/traces",
                content=payload,
                headers={"Content-Type": "application/x-protobuf"},
                verify=ssl.create_default_context(cafile=str(certs.ca)),
            )
        # Plain text to a TLS port: no answer an OTLP client could take for success.
        with pytest.raises(httpx.HTTPError):
            httpx.post(
                f"http://127.0.0.1:{gw.ports.http}/v1/traces",
                content=payload,
                headers={"Content-Type": "application/x-protobuf"},
                timeout=5,
            )
    labels = {"model": "tls", "model_version": "", "feature": "x", "le": "+Inf"}
    assert samples[("otelml_feature_value_bucket", frozenset(labels.items()))].value == 2
