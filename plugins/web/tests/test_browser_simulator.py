"""A breaker operated in the browser reaches the field simulator and comes back: headless Chromium
(Debian's /usr/bin/chromium via playwright) → web HMI → kernel command path → ``iec104`` source
(select-before-operate) → the simulator's IEC 60870-5-104 server → a :class:`GridTwin` of CIGRE MV,
whose switch opens; its new position comes back over IEC 104 to the overview page and the diagram."""

from __future__ import annotations

from pathlib import Path

import pytest

from dms_web.testing import require_chromium

playwright = require_chromium()
pytest.importorskip("dms_iec104")
pytest.importorskip("dms_simulator.grid")
pytest.importorskip("dms_pandapower")

import dms_iec104.plugin  # noqa: E402
import dms_pandapower.plugin  # noqa: E402
import dms_web.plugin as web_plugin  # noqa: E402
from dms_iec104.server import Iec104Server  # noqa: E402
from dms_iec104.testing import free_port, wait_until  # noqa: E402
from dms_kernel.model import Switch  # noqa: E402
from dms_kernel.model.scada import add_scada_measurements  # noqa: E402
from dms_pandapower.examples import load_example  # noqa: E402
from dms_simulator.grid import GridTwin  # noqa: E402
from dms_web.testing import PASSWORDS  # noqa: E402

#: the demo's substation RTU map (examples/cigre_mv/iec104.csv): the two HV transformer breakers and their flows
POINT_MAP = Path(__file__).resolve().parents[3] / "examples" / "cigre_mv" / "iec104.csv"
BREAKER = "switch_7/Pos"  # HV breaker of the second transformer (feeds bus 13 and the second feeder)


def deployment(port: int) -> str:
    users = ", ".join(f'{{ name = "{n}", role = "{n}", password_hash = "{h}" }}' for n, h in PASSWORDS.items())
    return f"""
[deployment]
name = "web + simulator"
model = "cigre_mv"
standard_measurements = true

[settings.web]
enabled = true
port = 0
live_batch_ms = 100
users = [{users}]

[[sources]]
name = "substation-rtu"
type = "iec104"
settings = {{ host = "127.0.0.1", port = {port}, points_file = "{POINT_MAP}", select_before_operate = true, reconnect_min_s = 0.2, command_timeout_s = 5.0 }}
"""


@pytest.fixture
async def rig(make_kernel):
    model = load_example("cigre_mv")
    add_scada_measurements(model)
    twin = GridTwin(model, speed=0.0, start_hour=12.0, noise=0.0, seed=1)
    port = free_port()
    server = Iec104Server("substation-rtu", {"port": port, "points_file": str(POINT_MAP), "select_before_operate": True}, twin)
    await server.start()
    try:
        kernel = make_kernel(("web", web_plugin), ("iec104", dms_iec104.plugin), ("pandapower", dms_pandapower.plugin),
                             deployment=deployment(port))
        async with kernel:
            await wait_until(lambda: kernel.points.read(BREAKER).value == 2.0, 10.0, "breaker position over IEC 104")
            yield kernel, twin
    finally:
        await server.stop()


def _switch(twin: GridTwin, mrid: str) -> Switch:
    switch = twin.model.objects[mrid]
    assert isinstance(switch, Switch)
    return switch


async def test_operator_opens_a_breaker_of_the_simulated_grid(rig, browser):
    kernel, twin = rig
    expect = playwright.expect
    url = web_plugin.server_for(kernel).url
    context = await browser.new_context(base_url=url, viewport={"width": 1500, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    await page.goto("/login")
    await page.get_by_label("User name").fill("operator")
    await page.get_by_label("Password").fill("operator")
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(url + "/")

    await page.goto("/?filter=switch_7")
    await expect(page.locator("#live-status")).to_have_text("● live")
    breaker = page.locator(f'tr[data-point="{BREAKER}"]')
    await expect(breaker.locator(".value")).to_have_text("closed")
    assert not _switch(twin, "switch_7").open

    await breaker.get_by_role("button", name="Control…").click()
    dialog = page.locator("#control-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Open").check()
    await dialog.get_by_label("Reason (audit trail)").fill("simulator browser test")
    await dialog.get_by_role("button", name="Select").click()
    await expect(dialog.locator("#control-summary")).to_have_text(f"OPEN {BREAKER}")
    assert not _switch(twin, "switch_7").open  # selected in the RTU, not yet operated
    await dialog.get_by_role("button", name="Confirm and operate").click()
    await expect(dialog.locator("#control-result")).to_contain_text("SUCCEEDED", timeout=10000)

    await wait_until(lambda: _switch(twin, "switch_7").open, 5.0, "switch_7 open in the twin")
    assert not _switch(twin, "switch_6").open
    await expect(breaker.locator(".value")).to_have_text("open", timeout=3000)  # back over IEC 104 and the WebSocket
    assert kernel.points.read(BREAKER).value == 1.0

    await page.goto("/grid/diagram")
    await page.wait_for_selector("#grid-diagram[data-ready='true']", timeout=15000)
    await page.wait_for_selector("[data-id='switch_7'][data-open='true']", timeout=10000)
    assert await page.get_attribute("[data-id='switch_6']", "data-open") == "false"
    assert await page.get_attribute("[data-id='bus_13']", "data-energised") == "false"
    assert errors == []
    await context.close()
