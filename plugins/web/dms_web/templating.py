"""Server-side HTML: Jinja2 with autoescaping; :func:`render` adds the base context.

Templates live in ``dms_web/templates`` and ``dms_web/grid/templates`` (the grid views);
every page extends ``base.html`` — see plugins/web/README.md for the blocks and context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse

from .security import Role

__all__ = ["render", "environment", "NAV"]

_HERE = Path(__file__).parent
NAV: list[tuple[str, str]] = [
    ("Overview", "/"),
    ("Alarms", "/alarms"),
    ("Work orders", "/workorders"),
    ("Trends", "/trends"),
    ("Reports", "/reports"),
    ("Applications", "/applications"),
]

_environment: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    global _environment
    if _environment is None:
        _environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(_HERE / "templates"), str(_HERE / "grid" / "templates")]),
            autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
            undefined=jinja2.StrictUndefined if False else jinja2.Undefined,
        )
    return _environment


def base_context(request: HTTPConnection) -> dict[str, Any]:
    state = request.scope.get("state", {})
    principal, session = state.get("principal"), state.get("session")
    web = request.app.state.web
    return {
        "request": request,
        "title": web.settings.title,
        "user": principal,
        "role": principal.role.label if principal else None,
        "can_control": bool(principal and principal.may(Role.OPERATOR)),
        "csrf_token": session.csrf if session else "",
        "nav": NAV + list(getattr(request.app.state, "grid_nav", [])),
        "path": request.url.path,
    }


def render(request: HTTPConnection, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the base context (``user``, ``role``, ``can_control``, ``csrf_token``, ``nav``, …)."""
    html = environment().get_template(template).render({**base_context(request), **context})
    return HTMLResponse(html, status)
