"""The integration REST API under ``/api/v1`` (filled in below)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from .auth import require


async def me(request: Request) -> JSONResponse:
    principal = require(request)
    return JSONResponse({"name": principal.name, "role": principal.role.label, "kind": principal.kind})


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse({"openapi": "3.1.0", "info": {"title": "Leitstand API", "version": "1"}, "paths": {}})


def routes() -> list[BaseRoute]:
    return [Route("/me", me), Route("/openapi.json", openapi)]
