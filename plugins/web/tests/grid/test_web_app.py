"""The grid views inside the web plugin's app: behind its login, live results from the cyclic power flow."""

from __future__ import annotations

import asyncio

import pytest

from dms_web.testing import deployment

DEPLOYMENT = deployment(
    """
[[jobs]]
study = "power_flow"
period_s = 0.5
"""
).replace('name = "web-test"', 'name = "web-test"\nmodel = "cigre_mv"\nstandard_measurements = true')


@pytest.fixture
def web_plugins():
    import dms_pandapower.plugin

    return [("pandapower", dms_pandapower.plugin)]


@pytest.mark.deployment(DEPLOYMENT)
async def test_grid_views_behind_the_login(web):
    anonymous = await web.client()
    assert (await anonymous.get("/grid/api/state")).status_code in (401, 303)  # README: 401 for /grid/api
    assert (await anonymous.get("/grid/diagram")).status_code in (302, 303)
    viewer = await web.client("viewer")
    page = await viewer.get("/grid/diagram")
    assert page.status_code == 200 and 'src="/static/grid/diagram.js"' in page.text and "/grid/map" in page.text
    assert (await viewer.get("/static/grid/diagram.js")).status_code == 200
    assert (await viewer.get("/static/vendor/leaflet/leaflet-src.esm.js")).status_code == 200
    assert len((await viewer.get("/grid/api/diagram")).json()["nodes"]) == 23
    for _ in range(100):  # the tracker subscribed with the first request; the job runs every 0.5 s
        state = (await viewer.get("/grid/api/state")).json()
        if state["result"]:
            break
        await asyncio.sleep(0.05)
    assert state["result"]["study"] == "power_flow" and len(state["voltages"]) == 23
    assert state["bands"]["default"] == [0.9, 1.1]
    profile = (await viewer.get("/grid/api/profile/line_0")).json()
    assert all(p["vm_pu"] for p in profile["points"])
