"""The OpenAPI 3.1 document of ``/api/v1``, generated from the endpoint declarations."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from . import __version__
from .endpoints import API

__all__ = ["document", "routes"]

_ROLE_NOTE = "Requires role **{role}** (viewer < operator < engineer < admin)."


def document(api: API) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for e in api.endpoints:
        operation: dict[str, Any] = {
            "summary": e.summary,
            "description": (e.description + "\n\n" if e.description else "") + _ROLE_NOTE.format(role=e.role.label),
            "operationId": f"{e.method.lower()}_{e.handler.__name__}_{abs(hash(e.path)) % 10_000}",
            "tags": [e.tag],
            "x-required-role": e.role.label,
            "responses": {
                "200" if e.method == "GET" or "create" not in e.handler.__name__ else "201": {
                    "description": "OK",
                    "content": {m: {"schema": e.response or ({"type": "object"} if "json" in m else {"type": "string"})} for m in e.media},
                },
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
            },
        }
        if e.method != "GET" or e.params:
            operation["responses"]["404"] = {"$ref": "#/components/responses/NotFound"}
        parameters = []
        for p in e.params:
            schema = {"type": "array", "items": p.schema} if p.multi else p.schema
            parameters.append({"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                               "description": p.description or p.name, "schema": schema,
                               **({"style": "form", "explode": True} if p.multi else {})})
        if parameters:
            operation["parameters"] = parameters
        if e.body is not None:
            operation["requestBody"] = {"required": bool(e.body.get("required")), "content": {"application/json": {"schema": e.body}}}
        paths.setdefault(e.openapi_path, {})[e.method.lower()] = operation
    error = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Leitstand DMS integration API",
            "version": __version__,
            "description": "Points, network model, topology, alarms, commands (select → operate with a confirmation token), "
                           "work orders, historian queries, CIM export and IEC 61968-9 meter readings. Authenticate with "
                           "`Authorization: Bearer <token>` (tokens with roles from `[settings.web] api_tokens`) or a browser "
                           "session (state-changing requests then need the `X-CSRF-Token` header).",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API token (`leitstand web new-token`)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "leitstand_session"},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "Series": {"type": "object", "properties": {"point": {"type": "string"}, "aggregate": {"type": "string"},
                                                            "time": {"type": "array", "items": {"type": "number"}},
                                                            "value": {"type": "array", "items": {"type": ["number", "null"]}},
                                                            "quality": {"type": "array", "items": {"type": "integer"}}}},
            },
            "responses": {
                "BadRequest": {**error, "description": "Invalid parameter or body"},
                "Unauthorized": {**error, "description": "Not authenticated"},
                "Forbidden": {**error, "description": "Role too low, or CSRF token missing"},
                "NotFound": {**error, "description": "No such object"},
            },
        },
    }


def routes(api: API) -> list[BaseRoute]:
    cached: dict[str, Any] = {}

    async def openapi(request: Request) -> JSONResponse:
        if "doc" not in cached:
            cached["doc"] = document(api)
        return JSONResponse(cached["doc"])

    return [Route("/openapi.json", openapi)]
