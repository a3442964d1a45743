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
from otelml.gateway.receivers.guard import Guard
from otelml.gateway.ui import routes as ui_routes


def create_app(
    snapshot: Callable[[], Awaitable[GatewayState]],
    ready: Callable[[], bool],
    config: GatewayConfig | None = None,
    bearer_token: str = "",
) -> Starlette:
    """`snapshot` returns the state to expose: the gateway's own, or its workers' merged.
    `bearer_token` (`auth.admin_bearer_token`): required on /metrics when set."""
    guard = Guard(bearer_token)

    async def metrics(request: Request) -> Response:
        if not guard.authorized(request.headers.get("authorization")):
            return PlainTextResponse(
                "missing or wrong bearer token\n", 401, {"WWW-Authenticate": "Bearer"}
            )
        openmetrics = wants_openmetrics(request.headers.get("accept"))
        body = render((await snapshot()).families(), openmetrics)
        media_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        return Response(body, headers={"Content-Type": media_type})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if not ready():
            return PlainTextResponse("not ready\n", status_code=503)
        # A queue that cannot be written (a full disk) refuses every export: not ready.
        failing = [
            f"exporter {name}: queue {operation} failing: {error}"
            for name, stats in sorted((await snapshot()).exporters.items())
            for operation, error in sorted(stats.failing.items())
        ]
        if failing:
            return PlainTextResponse("not ready\n" + "\n".join(failing) + "\n", status_code=503)
        return PlainTextResponse("ready\n")

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *ui_routes(snapshot, config or GatewayConfig()),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=4096)],
    )
