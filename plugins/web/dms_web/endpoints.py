"""Route metadata for the REST API: every endpoint is declared once with its role,
parameters, body and response schemas; the routes and the OpenAPI document come from it."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .auth import require
from .security import Role

__all__ = ["Param", "Endpoint", "API", "json_response", "BadRequest", "ServiceUnavailable", "parse_time"]

Handler = Callable[..., Awaitable[Response]]
MAX_BODY = 64 * 1024


class BadRequest(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


class ServiceUnavailable(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(503, detail)


@attrs.frozen
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""
    where: str = "query"  # or "path"
    required: bool = False
    multi: bool = False  # repeated query parameter (?point=a&point=b)


@attrs.frozen
class Endpoint:
    method: str
    path: str  # Starlette syntax, e.g. /points/{name:path}
    handler: Handler
    role: Role
    summary: str
    tag: str
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    media: tuple[str, ...] = ("application/json",)
    description: str = ""

    @property
    def openapi_path(self) -> str:
        import re

        return re.sub(r"\{(\w+):\w+\}", r"{\1}", self.path)


class API:
    """A collection of :class:`Endpoint` s; ``API.endpoint(...)`` is a decorator."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def endpoint(self, method: str, path: str, *, role: Role = Role.VIEWER, summary: str, tag: str,
                 params: tuple[Param, ...] = (), body: dict[str, Any] | None = None,
                 response: dict[str, Any] | None = None, media: tuple[str, ...] = ("application/json",),
                 description: str = "") -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, path, handler, role, summary, tag, params, body, response, media, description))
            return handler

        return register

    def routes(self) -> list[BaseRoute]:
        return [Route(e.path, _wrap(e), methods=[e.method], name=f"{e.method} {e.path}") for e in self.endpoints]


def _wrap(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        principal = require(request, endpoint.role)
        args: dict[str, Any] = {}
        for param in endpoint.params:
            if param.where == "path":
                args[param.name] = request.path_params[param.name]
                continue
            raw = request.query_params.getlist(param.name) if param.multi else request.query_params.get(param.name)
            if raw in (None, []):
                if param.required:
                    raise BadRequest(f"query parameter {param.name!r} is required")
                args[param.name] = [] if param.multi else param.schema.get("default")
                continue
            args[param.name] = [_convert(param, r) for r in raw] if param.multi else _convert(param, raw)
        if endpoint.body is not None:
            args["body"] = await _body(request, endpoint.body)
        return await endpoint.handler(request, principal, **args)

    return handle


def _convert(param: Param, raw: str) -> Any:
    kind = param.schema.get("type")
    if len(raw) > 1000:
        raise BadRequest(f"query parameter {param.name!r} is too long")
    try:
        if kind == "number":
            value: Any = float(raw)
            if not math.isfinite(value):
                raise ValueError
        elif kind == "integer":
            value = int(raw)
        elif kind == "boolean":
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value = raw.lower() in ("true", "1", "yes")
        else:
            value = raw
    except ValueError:
        raise BadRequest(f"query parameter {param.name!r}: expected {kind}, got {raw[:40]!r}") from None
    if "enum" in param.schema and value not in param.schema["enum"]:
        raise BadRequest(f"query parameter {param.name!r}: {raw[:40]!r} is not one of {', '.join(map(str, param.schema['enum']))}")
    if "minimum" in param.schema and value < param.schema["minimum"] or "maximum" in param.schema and value > param.schema["maximum"]:
        raise BadRequest(f"query parameter {param.name!r}: {value} is out of range")
    return value


_JSON_TYPES = {"string": str, "number": (int, float), "integer": int, "boolean": bool, "array": list, "object": dict}


async def _body(request: Request, schema: dict[str, Any]) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(413, "request body too large")
    if not raw:
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except ValueError:
            raise BadRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    properties = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in data:
            raise BadRequest(f"body field {key!r} is required")
    for key, value in data.items():
        spec = properties.get(key)
        if spec is None:
            raise BadRequest(f"unknown body field {key!r} (allowed: {', '.join(properties)})")
        expected = _JSON_TYPES.get(spec.get("type", ""), object)
        if not isinstance(value, expected) or isinstance(value, bool) and spec.get("type") in ("number", "integer"):
            raise BadRequest(f"body field {key!r}: expected {spec.get('type')}")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(f"body field {key!r}: not a finite number")
        if isinstance(value, str) and len(value) > spec.get("maxLength", 2000):
            raise BadRequest(f"body field {key!r}: too long")
        if "enum" in spec and value not in spec["enum"]:
            raise BadRequest(f"body field {key!r}: not one of {', '.join(map(str, spec['enum']))}")
    return data


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return value


def json_response(data: Any, status: int = 200) -> JSONResponse:
    """JSON with NaN/inf as null."""
    return JSONResponse(_clean(data), status)


def parse_time(value: Any, name: str) -> float | None:
    """Epoch seconds or an ISO 8601 string (``2026-05-01T00:00:00Z``)."""
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    from datetime import datetime, timezone

    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"query parameter {name!r}: expected epoch seconds or ISO 8601, got {str(value)[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
