"""The OpenAPI 3.1 document of /api/v1, its schemas generated from the answers' typed dicts."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter

from otelml import __version__
from otelml.gateway.ui import schema

_MODEL = {"name": "name", "in": "query", "required": True, "schema": {"type": "string"}}
_VERSION = {
    "name": "version",
    "in": "query",
    "required": True,
    "description": "the model version ('' when the spans carry none)",
    "schema": {"type": "string"},
}
_SEGMENT = {
    "name": "segment",
    "in": "query",
    "required": False,
    "description": "feature:value of a configured segment; absent: the whole model",
    "schema": {"type": "string"},
}


def _get(summary: str, answer: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": summary,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}},
        },
        "401": _problem("the bearer token is missing or wrong (a token is set in auth)"),
    }
    if parameters:
        responses["400"] = _problem("a parameter is malformed")
        responses["404"] = _problem("no such model, series or kept request")
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


_ANSWERS = (
    schema.Info,
    schema.ModelsResponse,
    schema.ModelDetail,
    schema.SeriesDetail,
    schema.RequestDetail,
    schema.Problem,
)


@functools.cache
def document() -> dict[str, Any]:
    _, definitions = TypeAdapter.json_schemas(
        [(t.__name__, "serialization", TypeAdapter(t)) for t in _ANSWERS],
        ref_template="#/components/schemas/{model}",
    )
    schemas = definitions.get("$defs", {})
    role = {
        "name": "role",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "enum": ["feature", "prediction"]},
    }
    series = {"name": "series", "in": "query", "required": True, "schema": {"type": "string"}}
    trace = {
        "name": "trace_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
    }
    optional = [{**_MODEL, "required": False}, {**_VERSION, "required": False}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "otelml gateway API",
            "version": __version__,
            "description": "What the embedded page at /ui shows: the gateway's own state, the "
            "same that /metrics exposes. With auth.admin_bearer_token (else auth.bearer_token) "
            "set, every call needs "
            "`Authorization: Bearer <token>`.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": {
            "/api/v1/info": _get("the gateway's version and UI settings", "Info", []),
            "/api/v1/models": _get(
                "every model version, the most drifting first", "ModelsResponse", []
            ),
            "/api/v1/model": _get(
                "one model version: its series, the drifting first, and performance",
                "ModelDetail",
                [_MODEL, _VERSION, _SEGMENT],
            ),
            "/api/v1/series": _get(
                "one feature or output: reference vs current per bucket, history, events",
                "SeriesDetail",
                [_MODEL, _VERSION, role, series, _SEGMENT],
            ),
            "/api/v1/requests/{trace_id}": _get(
                "the kept rows of one request, as the gateway saw them",
                "RequestDetail",
                [trace, *optional],
            ),
        },
    }
