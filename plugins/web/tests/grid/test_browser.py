"""The grid pages in real headless Chromium (Debian's chromium driven by playwright).

Set ``GRID_SCREENSHOTS=docs/screenshots`` to write the screenshots of the three views there
(they are committed for the documentation); otherwise they go to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

import dms_web
from dms_web.grid import routes
from dms_web.grid.latest import tracker

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("node") is None and False, reason="needs /usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.async_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(cigre_kernel):
    """The grid routes and the web plugin's static files on a local port (no login: tests the views)."""
    import uvicorn

    kernel = cigre_kernel
    result = await kernel.run_study("power_flow", publish=False)
    tracker(kernel).offer(result)
    static = Path(dms_web.__file__).parent / "static"
    app = Starlette(routes=[Mount("/static", StaticFiles(directory=static)), Mount("/grid", routes=routes(lambda: kernel))])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield kernel, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def page():
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(viewport={"width": 1500, "height": 860}, device_scale_factor=1)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        yield page
        await browser.close()


def _shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("GRID_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


async def test_diagram_renders_and_shows_a_switch_opened(served, page, tmp_path):
    kernel, base = served
    await page.goto(f"{base}/grid/diagram")
    await page.wait_for_selector("#grid-diagram[data-ready='true']", timeout=15000)
    svg = page.locator("#grid-svg")
    assert await svg.get_attribute("role") == "img"
    assert await page.locator("#grid-svg .gd-node-el").count() == 23
    assert await page.locator("#grid-svg .gd-switch").count() == 8
    assert await page.locator("#grid-svg .gd-att").count() == 28
    assert await page.get_attribute("[data-id='switch_7']", "data-open") == "false"
    assert await page.get_attribute("[data-id='bus_13']", "data-energised") == "true"
    assert await page.get_attribute("[data-id='bus_13']", "data-vm") not in (None, "")
    await page.screenshot(path=str(_shots(tmp_path) / "grid-diagram.png"))

    kernel.topology.set_switch("switch_7", True)  # open the HV breaker of the second transformer
    await page.evaluate("window.gridDiagram.refresh()")
    await page.wait_for_selector("[data-id='switch_7'][data-open='true']", timeout=10000)
    assert await page.locator("[data-id='switch_7'] .gd-switch.open").count() == 1
    assert await page.get_attribute("[data-id='bus_13']", "data-energised") == "false"
    assert await page.get_attribute("[data-id='line_10']", "data-energised") == "false"
    assert await page.get_attribute("[data-id='line_0']", "data-energised") == "true"

    await page.click("[data-id='switch_1'] .gd-switch")  # the element panel
    await page.wait_for_selector("#grid-panel:not([hidden]) .trend-link")
    assert await page.get_attribute("#grid-panel .trend-link", "href") == "/trends?point=S2%2FPos"
    assert page.errors == []


async def test_map_and_profile_render(served, page, tmp_path):
    _, base = served
    await page.goto(f"{base}/grid/map")
    await page.wait_for_selector("#grid-map[data-ready='true']", timeout=15000)
    assert await page.locator("#grid-map path.leaflet-interactive").count() > 40
    await page.screenshot(path=str(_shots(tmp_path) / "grid-map.png"))

    await page.goto(f"{base}/grid/profile?feeder=line_0")
    await page.wait_for_selector("#grid-profile[data-ready='true']", timeout=15000)
    assert await page.locator("#grid-profile-svg .gp-band").count() == 1
    assert await page.locator("#grid-profile-svg circle.gp-pt").count() == 3 * 15
    await page.screenshot(path=str(_shots(tmp_path) / "grid-profile.png"))
    assert page.errors == []
