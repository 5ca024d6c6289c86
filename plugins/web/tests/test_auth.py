"""Authentication, roles, sessions, CSRF, throttling, headers."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from dms_hookspecs import AuditEntry
from dms_web.security import LoginThrottle, Role, SessionStore, hash_password, verify_password

from dms_web.testing import API_TOKEN, VIEWER_TOKEN, login


def test_password_hash_roundtrip():
    hashed = hash_password("s3cret")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "s3cret")
    assert not verify_password(hashed, "wrong")
    assert not verify_password(None, "s3cret")
    assert not verify_password("garbage", "s3cret")


def test_roles_are_ordered():
    assert Role.VIEWER < Role.OPERATOR < Role.ENGINEER < Role.ADMIN
    with pytest.raises(ValueError, match="unknown role 'root'"):
        Role.parse("root")


def test_session_expiry_idle_and_absolute():
    now = [0.0]
    store = SessionStore(idle_s=10, max_s=25, clock=lambda: now[0])
    session = store.create("anna", Role.OPERATOR)
    now[0] = 9
    assert store.get(session.id) is session
    now[0] = 18
    assert store.get(session.id) is session  # used at 9: still idle < 10
    now[0] = 29
    assert store.get(session.id) is None  # beyond max_s
    other = store.create("bob", Role.VIEWER)
    now[0] = 40
    assert store.get(other.id) is None  # idle


def test_throttle_exponential_lockout():
    now = [0.0]
    throttle = LoginThrottle(free=3, delay_s=1.0, max_delay_s=8.0, clock=lambda: now[0])
    assert [throttle.failed("anna", "1.2.3.4") for _ in range(7)] == [0, 0, 0, 1, 2, 4, 8]
    assert throttle.locked_for("anna", "1.2.3.4") == 8
    assert throttle.locked_for("anna", "5.6.7.8") == 0  # per user and address
    assert throttle.locked_for("ANNA", "1.2.3.4") == 8  # user names case-insensitive here
    throttle.succeeded("anna", "1.2.3.4")
    assert throttle.locked_for("anna", "1.2.3.4") == 0


def test_hash_password_cli():
    result = subprocess.run([sys.executable, "-m", "dms_kernel", "web", "hash-password", "--password-stdin"],
                            input="operator\n", capture_output=True, text=True, check=True)
    hashed = result.stdout.strip()
    assert verify_password(hashed, "operator")


def test_new_token_cli():
    result = subprocess.run([sys.executable, "-m", "dms_kernel", "web", "new-token"], capture_output=True, text=True, check=True)
    token = re.search(r"token:\s+(\S+)", result.stdout).group(1)
    digest = re.search(r"token_sha256:\s+(\S+)", result.stdout).group(1)
    import hashlib

    assert hashlib.sha256(token.encode()).hexdigest() == digest


async def test_login_sets_strict_httponly_cookie_and_audits(web):
    audit: list[AuditEntry] = []

    async def collect(events):  # noqa: ANN001
        audit.extend(events)

    web.kernel.bus.subscribe("test-audit", collect, (AuditEntry,), 1000)
    client = await web.client()
    response = await login(client, "operator", "operator")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("leitstand_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
    page = await client.get("/")
    assert page.status_code == 200 and "operator" in page.text
    import asyncio

    for _ in range(50):
        if any(e.action == "web.login" for e in audit):
            break
        await asyncio.sleep(0.02)
    entry = next(e for e in audit if e.action == "web.login")
    assert entry.actor == "user:operator" and entry.time > 0


async def test_wrong_password_rejected_and_audited(web):
    client = await web.client()
    response = await login(client, "operator", "nope")
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert "leitstand_session" not in client.cookies


async def test_unknown_user_rejected(web):
    client = await web.client()
    assert (await login(client, "mallory", "x")).status_code == 401


async def test_brute_force_throttled(web):
    client = await web.client()
    statuses = [(await login(client, "admin", f"guess{k}")).status_code for k in range(5)]
    assert statuses[:4] == [401, 401, 401, 401]
    assert statuses[4] == 429  # locked after the fourth failure
    right = await login(client, "admin", "admin")
    assert right.status_code == 429 and "Retry-After" in right.headers  # even the right password waits
    other = await web.client()
    assert (await login(other, "operator", "operator")).status_code == 303  # other users unaffected


async def test_login_form_csrf_required(web):
    client = await web.client()
    response = await client.post("/login", data={"username": "admin", "password": "admin", "csrf_token": "forged"})
    assert response.status_code == 403


async def test_unauthenticated_pages_redirect_api_401(web):
    client = await web.client()
    page = await client.get("/alarms?priority=critical")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=%2Falarms")
    api = await client.get("/api/v1/points")
    assert api.status_code == 401 and api.json()["error"] == "authentication required"
    assert "Bearer" in api.headers["www-authenticate"]
    for path in ("/static/css/app.css", "/manifest.webmanifest", "/sw.js", "/api/v1/openapi.json", "/login"):
        assert (await client.get(path)).status_code == 200, path


async def test_open_redirect_refused(web):
    client = await web.client()
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = await client.post("/login", data={"username": "viewer", "password": "viewer", "csrf_token": token, "next": "//evil.example/x"})
    assert response.headers["location"] == "/"


async def test_logout_ends_session(web):
    client = await web.client("viewer")
    assert (await client.get("/api/v1/me")).json() == {"name": "viewer", "role": "viewer", "kind": "session"}
    forged = await client.post("/logout", data={"csrf_token": "x"})
    assert forged.status_code == 403
    response = await client.post("/logout", data={"csrf_token": client.headers["X-CSRF-Token"]})
    assert response.status_code == 303
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_stolen_cookie_useless_after_logout(web):
    client = await web.client("viewer")
    cookie = client.cookies["leitstand_session"]
    await client.post("/logout", data={"csrf_token": client.headers["X-CSRF-Token"]})
    thief = await web.client()
    thief.cookies.set("leitstand_session", cookie)
    assert (await thief.get("/api/v1/me")).status_code == 401


async def test_bearer_tokens(web):
    assert (await web.token_client().get("/api/v1/me")).json() == {"name": "erp", "role": "operator", "kind": "token"}
    assert (await web.token_client(VIEWER_TOKEN).get("/api/v1/me")).json()["role"] == "viewer"
    assert (await web.token_client("not-a-token").get("/api/v1/me")).status_code == 401
    # a token is for the API only, not for pages
    client = web.token_client(API_TOKEN)
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_security_headers(web):
    client = await web.client("viewer")
    response = await client.get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
