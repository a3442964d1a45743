"""The admin endpoint on :9464: /metrics for Prometheus, /healthz and /readyz for Kubernetes,
/ui and /api/v1 for people."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from otelml.config import GatewayConfig
from otelml.gateway.exporters.prometheus import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    render,
    wants_openmetrics,
)
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.ui import routes as ui_routes


def create_app(
    snapshot: Callable[[], Awaitable[GatewayState]],
    ready: Callable[[], bool],
    config: GatewayConfig | None = None,
) -> Starlette:
    """`snapshot` returns the state to expose: the gateway's own, or its workers' merged."""

    async def metrics(request: Request) -> Response:
        openmetrics = wants_openmetrics(request.headers.get("accept"))
        body = render((await snapshot()).families(), openmetrics)
        media_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        return Response(body, headers={"Content-Type": media_type})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if ready():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("not ready\n", status_code=503)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *ui_routes(snapshot, config or GatewayConfig()),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=4096)],
    )
