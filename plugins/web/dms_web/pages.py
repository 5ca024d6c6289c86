"""HTML pages (server-rendered; the small ES modules in ``static/js`` make them live)."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .auth import require
from .templating import render

__all__ = ["routes"]

_STATIC = Path(__file__).parent / "static"
OVERVIEW_LIMIT = 500


async def overview(request: Request) -> Response:
    require(request)
    database = request.app.state.kernel.points
    prefix = request.query_params.get("filter", "")[:200]
    rows = []
    for number, name in enumerate(database.names):
        if prefix and prefix.lower() not in name.lower():
            continue
        spec = database.spec(number)
        rows.append({"name": name, "unit": spec.unit, "kind": spec.kind.value, "controllable": spec.controllable,
                     "source": database.owner(number), "description": spec.description})
        if len(rows) >= OVERVIEW_LIMIT:
            break
    return render(request, "overview.html", points=rows, filter=prefix, limit=OVERVIEW_LIMIT, total=len(database))


async def alarms(request: Request) -> Response:
    require(request)
    return render(request, "alarms.html")


async def workorders(request: Request) -> Response:
    require(request)
    return render(request, "workorders.html")


async def trends(request: Request) -> Response:
    require(request)
    database = request.app.state.kernel.points
    analog = [name for number, name in enumerate(database.names) if database.spec(number).kind.value in ("analog", "counter", "setpoint")]
    return render(request, "trends.html", analog=analog[:2000], selected=request.query_params.getlist("point")[:8])


async def reports(request: Request) -> Response:
    require(request)
    return render(request, "reports.html")


async def applications(request: Request) -> Response:
    require(request)
    return render(request, "applications.html")


async def manifest(request: Request) -> Response:
    title = request.app.state.web.settings.title
    body = {
        "name": f"{title} — Leitstand", "short_name": title[:12], "start_url": "/", "scope": "/", "display": "standalone",
        "background_color": "#0d1117", "theme_color": "#0d1117", "description": "Distribution management system control room HMI",
        "icons": [{"src": "/static/icons/icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "any"},
                  {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
                  {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"}],
    }
    return Response(json.dumps(body), media_type="application/manifest+json")


async def service_worker(request: Request) -> Response:
    response = FileResponse(_STATIC / "js" / "sw.js", media_type="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    return response


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def routes() -> list[BaseRoute]:
    return [
        Route("/", overview),
        Route("/alarms", alarms),
        Route("/workorders", workorders),
        Route("/trends", trends),
        Route("/reports", reports),
        Route("/applications", applications),
        Route("/manifest.webmanifest", manifest),
        Route("/sw.js", service_worker),
        Route("/healthz", healthz),
    ]
