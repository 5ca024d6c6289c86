"""Test helpers for the web HMI (used by plugins/web/tests and the grid views' tests).

A kernel with the web plugin on an ephemeral port, a test RTU whose breaker follows its
commands, logged-in HTTP clients per role (password = user name), headless Chromium for the
browser tests. Needs the ``test`` extra (httpx, pytest, dms-alarms; playwright for the browser)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import types
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import dms_web.plugin as web_plugin
from dms_hookspecs import (
    Command, CommandResult, CommandStatus, MeasurementBatch, PointKind, PointSpec, Source, SourceContext,
)
from dms_web.security import hash_password, new_token, token_digest

#: the Chromium of the browser tests (``LEITSTAND_CHROMIUM`` overrides it; else ``chromium`` on PATH)
CHROMIUM = os.environ.get("LEITSTAND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

PASSWORDS = {name: hash_password(name) for name in ("viewer", "operator", "engineer", "admin")}
API_TOKEN = new_token()
VIEWER_TOKEN = new_token()


class TestRtu(Source):
    """Points ``<name>/U`` (kV), ``<name>/I`` (A), ``<name>/CB`` (breaker, SBO), ``<name>/SP`` (set-point);
    sources named ``meter*`` have ``<name>/E`` (kWh) and ``<name>/P`` (kW). Operate changes the value."""

    instances: dict[str, TestRtu] = {}

    def __init__(self, name, settings):  # noqa: ANN001
        super().__init__(name, settings)
        self.context: SourceContext | None = None
        self.selected: list[Command] = []
        self.operated: list[Command] = []
        TestRtu.instances[name] = self

    def points(self):
        n = self.name
        if n.startswith("meter"):
            return [PointSpec(f"{n}/E", PointKind.COUNTER, unit="kWh"), PointSpec(f"{n}/P", PointKind.ANALOG, unit="kW")]
        return [
            PointSpec(f"{n}/U", PointKind.ANALOG, unit="kV", description="busbar voltage"),
            PointSpec(f"{n}/I", PointKind.ANALOG, unit="A"),
            PointSpec(f"{n}/CB", PointKind.DOUBLE, controllable=True, select_before_operate=True, description="feeder breaker"),
            PointSpec(f"{n}/SP", PointKind.SETPOINT, unit="MW", controllable=True),
        ]

    async def run(self, context: SourceContext):
        self.context = context
        names = [str(spec.id) for spec in self.points()]
        initial = {"U": 20.1, "I": 120.0, "CB": 2.0, "SP": 1.0, "E": 1000.0, "P": 4.0}
        values = [initial[name.rsplit("/", 1)[1]] for name in names]
        now = time.time()
        context.publish(MeasurementBatch(self.name, context.point_numbers(names), values, [0] * len(names), [now] * len(names)))
        await asyncio.Event().wait()

    def set(self, point: str, value: float, quality: int = 0) -> None:
        assert self.context is not None, "source not running yet"
        self.context.publish_one(int(self.context.point_numbers([point])[0]), value, quality)

    async def select(self, command: Command) -> CommandResult:
        self.selected.append(command)
        return CommandResult(command.id, CommandStatus.SUCCEEDED, "selected", step="select")

    async def operate(self, command: Command) -> CommandResult:
        self.operated.append(command)
        self.set(str(command.target), float(command.value))
        return CommandResult(command.id, CommandStatus.SUCCEEDED, f"{command.target} := {command.value:g}")


test_plugin = types.SimpleNamespace(dms_add_source_types=lambda registry: registry.add("test_rtu", TestRtu))


def deployment(extra: str = "", **web: object) -> str:
    users = ", ".join(f'{{ name = "{n}", role = "{n}", password_hash = "{h}" }}' for n, h in PASSWORDS.items())
    settings = {"port": 0, "live_batch_ms": 100, **web}
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') if not isinstance(v, bool) else f"{k} = {str(v).lower()}" for k, v in settings.items())
    return f"""
[deployment]
name = "web-test"

[settings.web]
enabled = true
users = [{users}]
api_tokens = [{{ name = "erp", role = "operator", token_sha256 = "{token_digest(API_TOKEN)}" }},
              {{ name = "gis", role = "viewer", token_sha256 = "{token_digest(VIEWER_TOKEN)}" }}]
{lines}

[[sources]]
name = "rtu"
type = "test_rtu"

[[sources]]
name = "meter-1"
type = "test_rtu"
{extra}
"""


class WebHarness:
    def __init__(self, kernel, server) -> None:  # noqa: ANN001
        self.kernel = kernel
        self.server = server
        self.url = server.url
        self.rtu: TestRtu = TestRtu.instances["rtu"]
        self._clients: list[httpx.AsyncClient] = []

    async def client(self, user: str | None = None, password: str | None = None) -> httpx.AsyncClient:
        """An HTTP client; logged in as ``user`` (password = user name) if given, CSRF header set."""
        client = httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=10)
        self._clients.append(client)
        if user is not None:
            response = await login(client, user, password or user)
            assert response.status_code == 303, response.text
            page = await client.get("/")
            token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
            client.headers["X-CSRF-Token"] = token
        return client

    def token_client(self, token: str = API_TOKEN) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.url, timeout=10, headers={"Authorization": f"Bearer {token}"})
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()


async def login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return await client.post("/login", data={"username": user, "password": password, "csrf_token": token, "next": "/"})


async def wait_for(predicate, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def web_plugins():
    """Plugins besides web and the test RTU (override per module)."""
    import dms_alarms.plugin

    return [("alarms", dms_alarms.plugin)]


@pytest.fixture
async def web(make_kernel, web_plugins, request) -> AsyncIterator[WebHarness]:
    marker = request.node.get_closest_marker("deployment")
    text = marker.args[0] if marker else deployment()
    kernel = make_kernel(("web", web_plugin), ("test", test_plugin), *web_plugins, deployment=text)
    async with kernel:
        server = web_plugin.server_for(kernel)
        await wait_for(lambda: kernel.points.read("rtu/CB").value == 2.0)
        harness = WebHarness(kernel, server)
        try:
            yield harness
        finally:
            await harness.close()


def require_chromium() -> Any:
    """For a browser test module: skips it without Chromium (on CI: fails) or playwright;
    returns ``playwright.async_api``."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if os.environ.get("CI"):
            raise RuntimeError(f"Chromium is required for the browser tests on CI ({CHROMIUM} missing: apt-get install -y chromium)")
        pytest.skip(f"Chromium not installed ({CHROMIUM}); scripts/install installs it (apt-get install -y chromium)", allow_module_level=True)
    return pytest.importorskip("playwright.async_api")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium driven by playwright (see :func:`require_chromium`)."""
    playwright = require_chromium()
    async with playwright.async_playwright() as p:
        executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
