"""The Starlette application: pages, the REST API under ``/api/v1``, ``/ws``, static files,
and the grid views of :mod:`dms_web.grid` when that package is installed."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from . import api, auth, live, pages
from .context import WebContext

__all__ = ["create_app"]

log = logging.getLogger("leitstand.web")
_HERE = Path(__file__).parent


def _grid_routes() -> tuple[list[BaseRoute], list[tuple[str, str]]]:
    """``dms_web.grid.routes()`` if the grid package exists (built separately); else nothing."""
    try:
        grid = importlib.import_module("dms_web.grid")
    except ImportError as exc:
        if exc.name not in ("dms_web.grid",):
            log.warning("grid views not available: %s", exc)
        return [], []
    routes = getattr(grid, "routes", None)
    if routes is None:
        return [], []
    try:
        found = list(routes())
    except Exception as exc:  # noqa: BLE001 - the HMI must come up without the grid views
        log.error("grid views failed to build their routes: %s: %s", type(exc).__name__, exc)
        return [], []
    return found, list(getattr(grid, "NAV", []))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))
    if exc.status_code == 401:
        return await auth.login_page(request, "Please log in.", 401)
    return PlainTextResponse(f"{exc.status_code}: {exc.detail}", exc.status_code)


def create_app(web: WebContext) -> Starlette:
    grid_routes, grid_nav = _grid_routes()
    static = [Mount("/static", StaticFiles(directory=_HERE / "static"), name="static")]
    if (_HERE / "grid" / "static").is_dir():
        static.append(Mount("/grid/static", StaticFiles(directory=_HERE / "grid" / "static"), name="grid-static"))
    routes: list[BaseRoute] = [
        Route("/login", auth.login_page, methods=["GET"]),
        Route("/login", auth.login, methods=["POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        *pages.routes(),
        Mount("/api/v1", routes=api.routes()),
        WebSocketRoute("/ws", live.websocket_endpoint),
        *static,
    ]
    if grid_routes:
        routes.append(Mount("/grid", routes=grid_routes))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(auth.AuthGate, web=web)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.web = web
    app.state.kernel = web.kernel
    app.state.grid_nav = grid_nav
    return app
