"""Pages, live WebSocket, injection attempts."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from dms_web.testing import wait_for


@pytest.mark.parametrize("path", ["/", "/alarms", "/workorders", "/trends", "/reports", "/applications"])
async def test_pages_render_for_viewer_without_controls(web, path):
    viewer = await web.client("viewer")
    page = await viewer.get(path)
    assert page.status_code == 200
    assert 'data-can-control="false"' in page.text
    assert "control-dialog" not in page.text and "data-control=" not in page.text
    assert '<nav aria-label="Main">' in page.text and 'lang="en"' in page.text


async def test_operator_sees_control_buttons(web):
    operator = await web.client("operator")
    page = (await operator.get("/")).text
    assert 'data-control="rtu/CB"' in page and 'data-control="rtu/SP"' in page and 'data-control="rtu/U"' not in page
    assert 'id="control-dialog"' in page


async def test_manifest_and_service_worker(web):
    client = await web.client()
    manifest = (await client.get("/manifest.webmanifest")).json()
    assert manifest["display"] == "standalone" and {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    for icon in manifest["icons"]:
        assert (await client.get(icon["src"])).status_code == 200
    sw = await client.get("/sw.js")
    assert "text/javascript" in sw.headers["content-type"] and sw.headers["service-worker-allowed"] == "/"
    assert (await client.get("/static/vendor/uplot/uPlot.esm.js")).status_code == 200
    assert (await client.get("/static/vendor/uplot/LICENSE")).status_code == 200


async def test_injection_in_filters_and_names_is_harmless(web):
    viewer = await web.client("viewer")
    evil = '<script>alert(1)</script>"\'; DROP TABLE measurements; --'
    page = await viewer.get("/", params={"filter": evil})
    assert page.status_code == 200 and "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert (await viewer.get("/api/v1/points", params={"filter": evil})).json()["total"] == 0
    assert (await viewer.get(f"/api/v1/points/{evil}")).status_code == 404
    assert (await viewer.get("/api/v1/alarms", params={"source": evil, "category": "' OR 1=1 --"})).json()["alarms"] == []
    assert (await viewer.get("/api/v1/alarms", params={"priority": evil})).status_code == 400
    assert (await viewer.get("/api/v1/points", params={"filter": "x" * 5000})).status_code == 400
    trends = await viewer.get("/trends", params={"point": evil})
    assert "<script>alert(1)</script>" not in trends.text
    operator = await web.client("operator")
    assert (await operator.post("/api/v1/commands/select", json={"point": evil, "value": 1})).status_code == 404
    assert (await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": 1, "evil": 1})).status_code == 400
    assert (await operator.post("/api/v1/alarms/..%2F..%2Fetc/acknowledge", json={})).status_code in (404, 405)


async def test_csrf_rejected(web):
    operator = await web.client("operator")
    token = operator.headers.pop("X-CSRF-Token")
    missing = await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": 1})
    assert missing.status_code == 403 and "CSRF" in missing.json()["error"]
    wrong = await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": 1}, headers={"X-CSRF-Token": "x" * len(token)})
    assert wrong.status_code == 403
    cross = await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": 1},
                                headers={"X-CSRF-Token": token, "Origin": "http://evil.example"})
    assert cross.status_code == 403
    ok = await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": 1}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200
    assert web.rtu.operated == []


async def test_viewer_gets_403_on_every_state_change(web):
    viewer = await web.client("viewer")
    for path, body in (("/api/v1/commands/select", {"point": "rtu/CB", "value": 1}), ("/api/v1/commands/operate", {"token": "x", "confirm": True}),
                       ("/api/v1/commands/cancel", {"token": "x"}), ("/api/v1/alarms/x/acknowledge", {}),
                       ("/api/v1/alarms/x/shelve", {"duration_s": 5}), ("/api/v1/incidents", {"title": "x"}),
                       ("/api/v1/workorders", {"incident": 1}), ("/api/v1/workorders/1/transition", {"state": "closed"})):
        response = await viewer.post(path, json=body)
        assert response.status_code == 403, path
        assert "operator" in response.json()["error"]


def _ws_headers(client) -> dict[str, str]:  # noqa: ANN001
    return {"Cookie": f"leitstand_session={client.cookies['leitstand_session']}", "Origin": str(client.base_url).rstrip("/")}


async def test_websocket_pushes_point_changes_within_a_second(web):
    viewer = await web.client("viewer")
    url = web.url.replace("http", "ws") + "/ws"
    async with websockets.connect(url, additional_headers=_ws_headers(viewer)) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(json.dumps({"subscribe": ["rtu/U", "nope"]}))
        first = json.loads(await ws.recv())
        assert first["points"][0]["name"] == "rtu/U" and first["unknown"] == ["nope"]
        latencies = []
        for k in range(5):
            started = time.monotonic()
            web.rtu.set("rtu/U", 21.0 + k)
            web.rtu.set("rtu/I", 99.0 + k)  # not subscribed: not sent
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                if message["type"] == "points":
                    break
            latencies.append(time.monotonic() - started)
            assert [p["name"] for p in message["points"]] == ["rtu/U"] and message["points"][0]["value"] == 21.0 + k
        assert max(latencies) < 1.0


async def test_websocket_alarm_events_and_refusals(web):
    from dms_hookspecs import Alarm

    viewer = await web.client("viewer")
    url = web.url.replace("http", "ws") + "/ws"
    async with websockets.connect(url, additional_headers=_ws_headers(viewer)) as ws:
        await ws.recv()
        web.kernel.emit(Alarm("test alarm", 2, source="rtu", category="test"))
        message = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
        assert message["type"] == "alarm" and message["alarm"]["message"] == "test alarm"
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url):
            pass
    headers = {**_ws_headers(viewer), "Origin": "http://evil.example"}
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url, additional_headers=headers):
            pass


async def test_plugin_disabled_by_default(make_kernel):
    import dms_web.plugin as web_plugin

    kernel = make_kernel(("web", web_plugin), deployment='[deployment]\nname = "off"\n')
    async with kernel:
        with pytest.raises(LookupError):
            web_plugin.server_for(kernel)


async def test_bad_settings_named(make_kernel):
    import dms_web.plugin as web_plugin
    from dms_kernel import PluginError

    kernel = make_kernel(("web", web_plugin), deployment="""
[deployment]
name = "bad"
[settings.web]
enabled = true
users = [{ name = "x", role = "root", password_hash = "$argon2id$x" }]
""")
    with pytest.raises(PluginError, match=r"users\[0\] key 'role': unknown role 'root'"):
        await kernel.start()


async def test_logout_closes_websocket(web):
    viewer = await web.client("viewer")
    url = web.url.replace("http", "ws") + "/ws"
    async with websockets.connect(url, additional_headers=_ws_headers(viewer)) as ws:
        await ws.recv()
        await viewer.post("/logout", data={"csrf_token": viewer.headers["X-CSRF-Token"]})
        web.server.web.hub._drop_expired()
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2.0)
