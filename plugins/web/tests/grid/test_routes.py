"""The grid routes on a kernel made with dms_kernel.testing's make_kernel."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from dms_web.grid import NAV, routes
from dms_web.grid.latest import tracker


def _app(kernel) -> Starlette:
    return Starlette(routes=[Mount("/grid", routes=routes(lambda: kernel))])


async def test_json_endpoints_and_pages(cigre_kernel):
    kernel = cigre_kernel
    result = await kernel.run_study("power_flow", publish=False)
    assert tracker(kernel).offer(result)
    transport = httpx.ASGITransport(app=_app(kernel))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/grid/api/diagram", "/grid/api/state", "/grid/api/geo", "/grid/api/feeders", "/grid/api/profile/line_0",
                     "/grid/api/element/switch_1", "/grid/api/element/bus_5"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["content-type"] == "application/json"
        diagram = (await client.get("/grid/api/diagram")).json()
        assert len(diagram["nodes"]) == 23
        state = (await client.get("/grid/api/state")).json()
        assert state["result"]["converged"] is True and state["result"]["study"] == "power_flow"
        assert len(state["voltages"]) == 23 and state["bands"]["default"] == [0.9, 1.1]
        assert state["switches"]["switch_1"] == {"open": True, "normal_open": True}
        assert (await client.get("/grid/api/state?band=0.95,1.05")).json()["bands"]["default"] == [0.95, 1.05]
        assert (await client.get("/grid/api/state?band=1.2,0.8")).status_code == 400
        feeders = (await client.get("/grid/api/feeders")).json()["feeders"]
        assert [f["id"] for f in feeders] == ["line_0", "line_10"]
        profile = (await client.get("/grid/api/profile/Line%201-2")).json()
        assert profile["feeder"]["id"] == "line_0" and profile["points"][1]["vm_pu"] is not None
        assert (await client.get("/grid/api/profile/nope")).status_code == 404
        element = (await client.get("/grid/api/element/switch_1")).json()
        assert element["attributes"]["open"] is True
        assert [p["point"] for p in element["points"]] == ["S2/Pos"]
        assert element["trend_url"] == "/trends?point=S2%2FPos"
        line = (await client.get("/grid/api/element/line_0")).json()
        assert line["result"]["loading_percent"] and line["energised"] is True
        assert (await client.get("/grid/api/element/nothing")).status_code == 404
        for _, href in NAV:
            page = await client.get(href)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "/static/grid/" in page.text


async def test_state_follows_the_kernel_topology(cigre_kernel):
    kernel = cigre_kernel
    transport = httpx.ASGITransport(app=_app(kernel))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        kernel.topology.set_switch("switch_6", True)
        state = (await client.get("/grid/api/state")).json()
        assert state["switches"]["switch_6"]["open"] is True
        assert "bus_1" in state["deenergised_nodes"] and "bus_12" not in state["deenergised_nodes"]
        assert state["result"] is None and state["voltages"] == {}
