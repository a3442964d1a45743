"""Routes of /ui (static page) and /api/v1 (JSON), mounted on the admin server.

With a token set — `auth.admin_bearer_token`, which guards the whole admin port's data, else
`auth.bearer_token`, the OTLP one — every /api/v1 call needs `Authorization: Bearer <token>`. The
page's files hold no data and load without it; the page asks for the token (a login field, or
`?token=` once), keeps it in sessionStorage and sends it with every call.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from otelml import __version__
from otelml.config import GatewayConfig
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.receivers.guard import Guard
from otelml.gateway.ui import openapi, query, schema

STATIC = Path(__file__).parent / "static"
#: The page fetches nothing but its own files and this API.
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

Snapshot = Callable[[], Awaitable[GatewayState]]
Handler = Callable[[Request, GatewayState], Any]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status, headers=headers, media_type="application/json")


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    problem: schema.Problem = {"error": message}
    return _json(problem, status, headers)


def routes(snapshot: Snapshot, config: GatewayConfig) -> list[BaseRoute]:
    auth = config.auth
    token = auth.admin_bearer_token.get_secret_value() or auth.bearer_token.get_secret_value()
    guard = Guard(token)
    ui = config.ui

    def authorized(request: Request) -> bool:
        return guard.authorized(request.headers.get("authorization"))

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def respond(request: Request) -> Response:
            if not authorized(request):
                return _problem(
                    401,
                    "missing or wrong bearer token",
                    {"WWW-Authenticate": 'Bearer realm="otelml"'},
                )
            try:
                return _json(handler(request, await snapshot()))
            except query.NotFound as exc:
                return _problem(404, str(exc))
            except (ValueError, KeyError) as exc:
                return _problem(400, str(exc).strip("'"))

        return respond

    def params(request: Request) -> tuple[str, str, str | None]:
        q = request.query_params
        if "name" not in q or "version" not in q:
            raise ValueError("name and version are required")
        return q["name"], q["version"], q.get("segment")

    def info(request: Request, state: GatewayState) -> schema.Info:
        return {"version": __version__, "auth": bool(token), "grafana_url": ui.grafana_url}

    def models(request: Request, state: GatewayState) -> schema.ModelsResponse:
        return query.models(state)

    def model(request: Request, state: GatewayState) -> schema.ModelDetail:
        return query.model(state, *params(request))

    def series(request: Request, state: GatewayState) -> schema.SeriesDetail:
        name, version, segment = params(request)
        q = request.query_params
        return query.series(state, name, version, q["role"], q["series"], segment)

    def request_detail(request: Request, state: GatewayState) -> schema.RequestDetail:
        q = request.query_params
        trace_id = request.path_params["trace_id"]
        return query.request(state, trace_id, q.get("name"), q.get("version"), ui)

    def document(request: Request, state: GatewayState) -> dict[str, Any]:
        return openapi.document()

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    async def to_page(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=308)

    return [
        Route("/api/v1/info", endpoint(info)),
        Route("/api/v1/models", endpoint(models)),
        Route("/api/v1/model", endpoint(model)),
        Route("/api/v1/series", endpoint(series)),
        Route("/api/v1/requests/{trace_id}", endpoint(request_detail)),
        Route("/api/v1/openapi.json", endpoint(document)),
        Route("/ui", to_page),
        Route("/ui/", page),
        Mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static"),
    ]
