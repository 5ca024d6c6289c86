"""Screenshots of the web HMI's views for the documentation (this directory).

Runs the CIGRE MV demo (``examples/cigre_mv/deployment.toml``) in this process with all its
simulated protocol servers on free loopback ports, the web HMI on an ephemeral port, the
historian in a temporary SQLite file and a work-order service with one crew; lets it run for a
while (trends need history), opens an incident with a work order, raises a critical alarm, then
logs in with headless Chromium (Debian's /usr/bin/chromium via playwright) and saves

    login.png  overview.png  alarms.png  workorders.png  trends.png  reports.png

The grid views (grid-diagram/map/profile.png) come from plugins/web/tests/grid/test_browser.py
(``GRID_SCREENSHOTS=docs/screenshots``).

Run: ``.venv/bin/python docs/screenshots/take.py [seconds of history, default 30]``.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
import tomllib
from pathlib import Path

import httpx
from playwright.async_api import async_playwright, expect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEMO = ROOT / "examples" / "cigre_mv"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
#: the plugins the demo's views need (only these entry points are loaded)
ENABLE = ["simulator", "iec104", "iec61850", "dnp3", "opcua", "dlms", "pandapower", "limits", "alarms", "sqlhistorian",
          "workorders", "web"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_deployment(tmp: Path) -> dict:
    """The demo deployment with free ports, temporary databases and no console output."""
    raw = tomllib.loads((DEMO / "deployment.toml").read_text())
    ports: dict[str, int] = {}
    simulator = raw["settings"]["simulator"]
    simulator["control_port"] = 0
    for server in simulator["servers"]:
        ports[server["name"]] = _free_port()
        server["settings"]["port"] = ports[server["name"]]
        server["settings"]["points_file"] = str(DEMO / server["settings"]["points_file"])
    for source in raw["sources"]:
        settings = source["settings"]
        settings["port"] = ports[source["name"]]
        settings["points_file"] = str(ROOT / settings["points_file"])
    raw["settings"]["web"]["port"] = 0
    raw["settings"]["workorders"] = {
        "url": f"sqlite:///{tmp / 'workorders.db'}",
        "crews": [{"name": "north", "skills": ["mv"], "shift_start": "00:00", "shift_end": "23:59", "lat": 52.5, "lon": 13.4}],
    }
    raw["sinks"] = [s for s in raw["sinks"] if s["type"] != "console"]
    for sink in raw["sinks"]:
        if sink["type"] == "sql":
            sink["settings"]["url"] = f"sqlite:///{tmp / 'historian.db'}"
    raw["plugins"] = {"enable": ENABLE}
    return raw


async def _api_data(url: str) -> None:
    """An incident with an assigned work order, through the REST API as the operator."""
    from dms_web.testing import login

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        assert (await login(client, "operator", "operator")).status_code == 303
        page = await client.get("/")
        token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        client.headers["X-CSRF-Token"] = token
        incident = (await client.post("/api/v1/incidents", json={"title": "Cable fault suspected on Line 3-4", "element": "Line 3-4"})).json()
        order = (await client.post("/api/v1/workorders", json={"incident": incident["id"], "description": "Inspect cable Line 3-4", "skills": ["mv"]})).json()
        await client.post(f"/api/v1/workorders/{order['id']}/transition", json={"state": "assigned", "crew": "north"})
        await client.post("/api/v1/workorders", json={"incident": incident["id"], "description": "Switching order: isolate Line 3-4", "skills": ["mv"]})


async def main(history_s: float) -> None:
    from dms_hookspecs import Alarm, AlarmPriority
    from dms_kernel.testing import build_kernel
    import dms_web.plugin as web_plugin

    with tempfile.TemporaryDirectory() as tmp:
        kernel = build_kernel(deployment=demo_deployment(Path(tmp)), entry_points=True, base=DEMO)
        async with kernel:
            url = web_plugin.server_for(kernel).url
            print(f"demo running at {url}; collecting {history_s:.0f} s of history …", flush=True)
            await asyncio.sleep(history_s)
            await _api_data(url)
            kernel.emit(Alarm("breaker 'switch_7' tripped: overcurrent (demo)", AlarmPriority.CRITICAL, source="substation-rtu", category="protection"))
            await asyncio.sleep(1.0)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = await browser.new_context(base_url=url, viewport={"width": 1500, "height": 900}, device_scale_factor=1)
                page = await context.new_page()
                await page.goto("/login")
                await page.get_by_label("User name").fill("operator")
                await page.screenshot(path=str(HERE / "login.png"))
                await page.get_by_label("Password").fill("operator")
                await page.get_by_role("button", name="Log in").click()
                await page.wait_for_url(url + "/")
                await expect(page.locator("#live-status")).to_have_text("● live", timeout=10000)
                await page.wait_for_timeout(1500)
                await page.screenshot(path=str(HERE / "overview.png"))
                for path, name, marker in (("/alarms", "alarms", "#alarm-table tbody tr"),
                                           ("/workorders", "workorders", "#board"),
                                           ("/trends?point=Trafo_0-1/P", "trends", "#chart"),
                                           ("/reports", "reports", "#report tbody tr")):
                    await page.goto(path)
                    await expect(page.locator(marker).first).to_be_attached(timeout=10000)
                    await page.wait_for_load_state("networkidle")
                    await page.wait_for_timeout(1500)
                    await page.screenshot(path=str(HERE / f"{name}.png"))
                    print(f"  {name}.png", flush=True)
                await browser.close()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0))
