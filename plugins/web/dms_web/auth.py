"""Authentication gate (ASGI middleware), CSRF and role checks, login and logout.

Every request passes :class:`AuthGate`:

1. the principal is found — ``Authorization: Bearer <token>`` (API paths only) or the
   session cookie — and stored in ``request.state.principal`` (and ``.session``);
2. without one, a public path passes; an ``/api`` path gets **401** (JSON), ``/ws`` is
   refused, a page is redirected to ``/login?next=…``;
3. a state-changing request (POST, PUT, PATCH, DELETE) made with a session cookie must carry
   the session's CSRF token in the ``X-CSRF-Token`` header (form posts: a ``csrf_token``
   field, checked by the route) and, if the browser sends ``Origin``, come from this site —
   else **403**. Bearer-token requests carry no cookie and need no CSRF token.

Routes check roles with :func:`require` (**403** when the role is too low).
"""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from .context import WebContext
from .security import Principal, Role, verify_password

__all__ = ["AuthGate", "require", "principal_of", "login_page", "login", "logout", "SESSION_COOKIE", "CSRF_HEADER"]

SESSION_COOKIE = "leitstand_session"
LOGIN_CSRF_COOKIE = "leitstand_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC_PREFIXES = ("/static/", "/grid/static/")
PUBLIC_PATHS = {"/login", "/manifest.webmanifest", "/sw.js", "/favicon.ico", "/api/v1/openapi.json", "/healthz"}
FORM_CSRF_PATHS = {"/login", "/logout"}  # these check a form field themselves


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class AuthGate:
    """ASGI middleware: principal, 401/redirect, CSRF and origin checks, security headers."""

    def __init__(self, app: Any, web: WebContext) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        path = scope["path"]
        principal, session = self._identify(connection, path)
        state = scope.setdefault("state", {})
        state["principal"], state["session"] = principal, session
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if scope["type"] == "websocket":
            if principal is None or not self._same_origin(connection.headers, connection):
                await send({"type": "websocket.close", "code": 4401})
                return
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if principal is None and not public:
            if _is_api(path):
                response: Response = JSONResponse({"error": "authentication required"}, 401, headers={"WWW-Authenticate": 'Bearer realm="leitstand"'})
            else:
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            await self._send(response, scope, receive, send)
            return
        if method not in SAFE_METHODS and session is not None and path not in FORM_CSRF_PATHS:
            token = connection.headers.get(CSRF_HEADER, "")
            if not token or not secrets.compare_digest(token, session.csrf) or not self._same_origin(connection.headers, connection):
                await self._send(self._forbidden(path, "CSRF token missing or wrong"), scope, receive, send)
                return
        await self.app(scope, receive, lambda message: send(self._secure(message)))

    def _identify(self, connection: HTTPConnection, path: str) -> tuple[Principal | None, Any]:
        authorization = connection.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer " and _is_api(path):
            return self.web.principal_for_token(authorization[7:].strip()), None
        session = self.web.sessions.get(connection.cookies.get(SESSION_COOKIE))
        if session is None:
            return None, None
        return Principal(session.user, session.role, "session"), session

    @staticmethod
    def _same_origin(headers: Headers, connection: HTTPConnection) -> bool:
        """No ``Origin`` (non-browser client) passes; a browser's must name this host."""
        origin = headers.get("origin")
        if origin is None:
            return True
        return urlsplit(origin).netloc == headers.get("host", "")

    @staticmethod
    def _forbidden(path: str, why: str) -> Response:
        if _is_api(path):
            return JSONResponse({"error": why}, 403)
        return PlainTextResponse(f"403 Forbidden: {why}", 403)

    async def _send(self, response: Response, scope: dict, receive: Any, send: Any) -> None:
        await response(scope, receive, lambda message: send(self._secure(message)))

    def _secure(self, message: dict) -> dict:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {k.lower() for k, _ in headers}
            for key, value in SECURITY_HEADERS:
                if key not in names:
                    headers.append((key, value))
            if self.web.settings.tls:
                headers.append((b"strict-transport-security", b"max-age=31536000"))
            message = {**message, "headers": headers}
        return message


SECURITY_HEADERS = (
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


def principal_of(request: HTTPConnection) -> Principal | None:
    return request.scope.get("state", {}).get("principal")


def require(request: HTTPConnection, role: Role = Role.VIEWER) -> Principal:
    """The request's principal if it has at least ``role``; else raise 401/403."""
    principal = principal_of(request)
    if principal is None:
        raise HTTPException(401, "authentication required")
    if not principal.may(role):
        raise HTTPException(403, f"role {role.label} required (you are {principal.role.label})")
    return principal


def web_of(request: HTTPConnection) -> WebContext:
    return request.app.state.web


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login_page(request: Request, error: str = "", status: int = 200) -> Response:
    from .templating import render

    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", status=status, login_csrf=token, error=error, next=_safe_next(request.query_params.get("next")))
    _cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def login(request: Request) -> Response:
    """POST /login (form ``username``, ``password``, ``csrf_token``, ``next``)."""
    web = web_of(request)
    form = await request.form()
    username, password = str(form.get("username", ""))[:200], str(form.get("password", ""))[:1000]
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(str(form.get("csrf_token", "")), expected):
        return await login_page(request, "The login form expired; please try again.", 403)
    address = _client(request)
    wait = web.throttle.locked_for(username, address)
    if wait > 0:
        web.audit(f"user:{username}", "web.login.throttled", username, f"from {address}, locked for {wait:.0f} s")
        response = await login_page(request, f"Too many failed attempts. Try again in {math.ceil(wait)} s.", 429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    user = web.users.get(username)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        delay = web.throttle.failed(username, address)
        web.audit(f"user:{username}", "web.login.failed", username, f"from {address}; next attempt in {delay:.0f} s")
        return await login_page(request, "Wrong user name or password.", 401)
    web.throttle.succeeded(username, address)
    old = request.cookies.get(SESSION_COOKIE)
    web.sessions.delete(old)  # no session fixation
    session = web.sessions.create(user.name, user.role, address)
    web.audit(Principal(user.name, user.role), "web.login", user.name, f"role {user.role.label} from {address}")
    response = RedirectResponse(_safe_next(str(form.get("next", "/"))), 303)
    _cookie(response, request, SESSION_COOKIE, session.id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    """POST /logout (form field ``csrf_token`` or header)."""
    web = web_of(request)
    session = request.scope.get("state", {}).get("session")
    if session is not None:
        form = await request.form()
        token = str(form.get("csrf_token", "")) or request.headers.get(CSRF_HEADER, "")
        if not secrets.compare_digest(token, session.csrf):
            return PlainTextResponse("403 Forbidden: CSRF token missing or wrong", 403)
        web.sessions.delete(session.id)
        web.audit(f"user:{session.user}", "web.logout", session.user)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
        secure=web_of(request).settings.tls or request.url.scheme == "https",
    )
