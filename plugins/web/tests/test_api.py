"""REST API: every endpoint, its roles, and the OpenAPI description."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import pytest
from openapi_spec_validator import validate

from dms_web.api import api
from dms_web.testing import API_TOKEN, VIEWER_TOKEN, deployment, wait_for


@pytest.fixture
def ops_plugins():
    import dms_alarms.plugin
    import dms_sqlhistorian.plugin
    import dms_workorders.plugin

    return [("alarms", dms_alarms.plugin), ("sqlhistorian", dms_sqlhistorian.plugin), ("workorders", dms_workorders.plugin)]


@pytest.fixture
def ops_deployment(tmp_path):
    return deployment(f"""
[settings.workorders]
url = "sqlite:///{tmp_path}/wo.db"
customers_served = 100
crews = [{{ name = "north", skills = ["mv"], shift_start = "00:00", shift_end = "23:59", lat = 52.5, lon = 13.4 }}]

[settings.alarms]
point_limits = [{{ point = "rtu/U", high = 21.0, priority = "critical" }}]

[[sinks]]
name = "historian"
type = "sql"
settings = {{ url = "sqlite:///{tmp_path}/h.db", maintenance_interval_s = 0 }}
""")


@pytest.fixture
async def ops(make_kernel, ops_plugins, ops_deployment):
    import dms_web.plugin as web_plugin
    from dms_web.testing import WebHarness, test_plugin

    kernel = make_kernel(("web", web_plugin), ("test", test_plugin), *ops_plugins, deployment=ops_deployment)
    async with kernel:
        await wait_for(lambda: kernel.points.read("rtu/CB").value == 2.0)
        harness = WebHarness(kernel, web_plugin.server_for(kernel))
        try:
            yield harness
        finally:
            await harness.close()


async def test_openapi_document_is_valid_and_covers_every_endpoint(web):
    client = await web.client()
    doc = (await client.get("/api/v1/openapi.json")).json()
    validate(doc)
    operations = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    for endpoint in api.endpoints:
        assert (endpoint.method, endpoint.openapi_path) in operations
    assert doc["paths"]["/commands/operate"]["post"]["x-required-role"] == "operator"
    assert len(operations) >= 24


async def test_points_list_get_and_filters(web):
    client = await web.client("viewer")
    data = (await client.get("/api/v1/points")).json()
    assert data["total"] == 6
    by_name = {p["name"]: p for p in data["points"]}
    assert by_name["rtu/U"]["value"] == pytest.approx(20.1) and by_name["rtu/U"]["unit"] == "kV" and by_name["rtu/U"]["good"]
    assert by_name["rtu/CB"]["controllable"] and by_name["rtu/CB"]["select_before_operate"]
    assert (await client.get("/api/v1/points", params={"filter": "METER"})).json()["total"] == 2
    assert (await client.get("/api/v1/points", params={"kind": "double"})).json()["total"] == 1
    assert (await client.get("/api/v1/points", params={"controllable": "true", "limit": 1})).json()["total"] == 2
    assert (await client.get("/api/v1/points", params={"source": "meter-1"})).json()["total"] == 2
    assert (await client.get("/api/v1/points/rtu/U")).json()["value"] == pytest.approx(20.1)
    assert (await client.get("/api/v1/points/rtu/nope")).status_code == 404
    assert (await client.get("/api/v1/points", params={"limit": "many"})).status_code == 400
    assert (await client.get("/api/v1/points", params={"kind": "bogus"})).status_code == 400


async def test_points_with_bearer_token(web):
    assert (await web.token_client(VIEWER_TOKEN).get("/api/v1/points/rtu/I")).json()["value"] == 120.0


async def test_no_model_gives_503(web):
    client = await web.client("viewer")
    for path in ("/api/v1/model", "/api/v1/model/elements", "/api/v1/topology", "/api/v1/cim/export"):
        response = await client.get(path)
        assert response.status_code == 503 and "model" in response.json()["error"], path


async def test_services_missing_give_503(web):
    client = await web.client("operator")
    assert (await client.get("/api/v1/workorders")).status_code == 503
    assert (await client.get("/api/v1/points/rtu/U/history")).status_code == 503
    assert (await client.get("/api/v1/historian/series", params={"point": "rtu/U"})).status_code == 503


async def test_alarms_list_acknowledge_shelve(web):
    operator = await web.client("operator")
    web.kernel.emit(__import__("dms_hookspecs").Alarm("breaker 'rtu/CB' failure: test", 1, source="rtu", category="test"))
    await wait_for(lambda: len(__import__("dms_alarms").manager_for(web.kernel).active()) == 1)
    listed = (await operator.get("/api/v1/alarms", params={"priority": "critical", "unacknowledged": "true"})).json()
    (alarm,) = listed["alarms"]
    assert alarm["state"] == "unacked-active" and alarm["priority"] == "critical"
    assert (await operator.get("/api/v1/alarms", params={"priority": "low"})).json()["alarms"] == []
    acked = await operator.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", json={"comment": "seen"})
    assert acked.status_code == 200 and acked.json()["acked_by"] == "user:operator"
    again = await operator.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", json={})
    assert again.status_code == 409
    shelved = await operator.post(f"/api/v1/alarms/{alarm['id']}/shelve", json={"duration_s": 600, "reason": "maintenance"})
    assert shelved.status_code == 200 and shelved.json()["shelved_until"] > time.time()
    assert (await operator.get("/api/v1/alarms")).json()["alarms"] == []
    assert len((await operator.get("/api/v1/alarms", params={"include_shelved": "true"})).json()["alarms"]) == 1
    assert (await operator.post(f"/api/v1/alarms/{alarm['id']}/unshelve", json={})).status_code == 200
    assert (await operator.post("/api/v1/alarms/nope/acknowledge", json={})).status_code == 404
    viewer = await web.client("viewer")
    assert (await viewer.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", json={})).status_code == 403


async def test_command_select_confirm_operate(web):
    operator = await web.client("operator")
    selected = await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": 1, "reason": "test"})
    assert selected.status_code == 200, selected.text
    token = selected.json()["token"]
    assert selected.json()["summary"] == "OPEN rtu/CB"
    assert web.rtu.operated == []  # nothing sent before the confirmation
    no_confirm = await operator.post("/api/v1/commands/operate", json={"token": token, "confirm": False})
    assert no_confirm.status_code == 400
    result = await operator.post("/api/v1/commands/operate", json={"token": token, "confirm": True})
    assert result.status_code == 200 and result.json()["status"] == "succeeded"
    assert web.kernel.points.read("rtu/CB").value == 1.0
    (command,) = web.rtu.operated
    assert command.originator == "user:operator" and command.select_before_operate and len(web.rtu.selected) == 1
    reused = await operator.post("/api/v1/commands/operate", json={"token": token, "confirm": True})
    assert reused.status_code == 404  # a token works once


async def test_command_token_bound_to_user_and_expires(web):
    operator, admin = await web.client("operator"), await web.client("admin")
    token = (await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": 1})).json()["token"]
    assert (await admin.post("/api/v1/commands/operate", json={"token": token, "confirm": True})).status_code == 404
    web.server.web.pending[token] = __import__("attrs").evolve(web.server.web.pending[token], expires=0.0)
    assert (await operator.post("/api/v1/commands/operate", json={"token": token, "confirm": True})).status_code == 410
    assert web.rtu.operated == []
    token = (await operator.post("/api/v1/commands/select", json={"point": "rtu/SP", "value": 2.5})).json()["token"]
    assert (await operator.post("/api/v1/commands/cancel", json={"token": token})).json() == {"cancelled": True}
    assert (await operator.post("/api/v1/commands/operate", json={"token": token, "confirm": True})).status_code == 404


async def test_command_validation(web):
    operator = await web.client("operator")
    assert (await operator.post("/api/v1/commands/select", json={"point": "rtu/U", "value": 1})).status_code == 409
    assert (await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": 7})).status_code == 400
    assert (await operator.post("/api/v1/commands/select", json={"point": "nope", "value": 1})).status_code == 404
    assert (await operator.post("/api/v1/commands/select", json={"point": "rtu/CB"})).status_code == 400
    assert (await operator.post("/api/v1/commands/select", json={"point": "rtu/CB", "value": "1"})).status_code == 400
    assert (await operator.post("/api/v1/commands/select", content=b"not json", headers={"content-type": "application/json"})).status_code == 400


async def test_commands_with_token_roles(web):
    erp = web.token_client(API_TOKEN)  # operator token: no CSRF needed (no cookie)
    token = (await erp.post("/api/v1/commands/select", json={"point": "rtu/SP", "value": 3})).json()["token"]
    result = (await erp.post("/api/v1/commands/operate", json={"token": token, "confirm": True})).json()
    assert result["status"] == "succeeded" and web.rtu.operated[-1].originator == "token:erp"
    gis = web.token_client(VIEWER_TOKEN)
    assert (await gis.post("/api/v1/commands/select", json={"point": "rtu/SP", "value": 3})).status_code == 403


async def test_workorders_incidents_transitions(ops):
    operator = await ops.client("operator")
    incident = await operator.post("/api/v1/incidents", json={"title": "smell of burning at K17", "element": "K17"})
    assert incident.status_code == 201, incident.text
    iid = incident.json()["id"]
    order = await operator.post("/api/v1/workorders", json={"incident": iid, "description": "inspect K17", "skills": ["mv"]})
    assert order.status_code == 201 and order.json()["state"] == "new"
    oid = order.json()["id"]
    assigned = await operator.post(f"/api/v1/workorders/{oid}/transition", json={"state": "assigned", "crew": "north"})
    assert assigned.status_code == 200 and assigned.json()["crew"] == "north"
    dispatched = await operator.post(f"/api/v1/workorders/{oid}/transition", json={"state": "dispatched", "note": "radio"})
    assert dispatched.json()["state"] == "dispatched"
    wrong = await operator.post(f"/api/v1/workorders/{oid}/transition", json={"state": "closed"})
    assert wrong.status_code == 409
    assert (await operator.post("/api/v1/workorders/9999/transition", json={"state": "cancelled"})).status_code == 404
    viewer = await ops.client("viewer")
    assert [o["id"] for o in (await viewer.get("/api/v1/workorders", params={"state": "dispatched"})).json()["orders"]] == [oid]
    assert (await viewer.get("/api/v1/incidents", params={"status": "open"})).json()["incidents"][0]["title"] == "smell of burning at K17"
    assert (await viewer.get("/api/v1/crews")).json()["crews"][0]["name"] == "north"
    assert (await viewer.post("/api/v1/incidents", json={"title": "x"})).status_code == 403


async def _stored(ops, point: str, count: int) -> None:
    from dms_sqlhistorian import query

    sink = ops.kernel.sinks["historian"]
    for _ in range(200):
        if query.count(sink.engine, point=point) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{point} not stored")


async def test_history_series_and_meter_readings(ops):
    for value in (20.2, 20.3):
        ops.rtu.set("rtu/U", value)
        await asyncio.sleep(0.05)
    await _stored(ops, "rtu/U", 3)
    await _stored(ops, "meter-1/E", 1)
    viewer = await ops.client("viewer")
    history = (await viewer.get("/api/v1/points/rtu/U/history", params={"since": time.time() - 60})).json()
    assert history["value"][-2:] == [20.2, 20.3] and len(history["time"]) == len(history["quality"])
    aggregated = (await viewer.get("/api/v1/points/rtu/U/history", params={"aggregate": "1min"})).json()
    assert aggregated["aggregate"] == "1min" and aggregated["count"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120))
    series = (await viewer.get("/api/v1/historian/series", params=[("point", "rtu/U"), ("point", "rtu/I"), ("since", iso)])).json()["series"]
    assert [s["point"] for s in series] == ["rtu/U", "rtu/I"] and series[1]["value"] == [120.0]
    assert (await viewer.get("/api/v1/historian/series", params={"point": "rtu/U", "since": "yesterday"})).status_code == 400
    assert (await viewer.get("/api/v1/historian/series")).status_code == 400

    readings = (await viewer.get("/api/v1/meter-readings")).json()["MeterReadings"]["MeterReading"]
    (meter,) = readings
    assert meter["Meter"]["mRID"] == "meter-1"
    energy = next(r for r in meter["Readings"] if r["point"] == "meter-1/E")
    assert energy["value"] == 1000.0 and energy["ReadingType"] == "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0" and energy["quality"] == "1.0.0"
    xml = await viewer.get("/api/v1/meter-readings", params={"format": "xml", "meter": "meter-1"})
    assert xml.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(xml.content)
    ns = {"m": "http://iec.ch/TC57/2011/MeterReadings#"}
    assert root.tag == "{http://iec.ch/TC57/2011/MeterReadings#}MeterReadings"
    assert root.find("m:MeterReading/m:Meter/m:mRID", ns).text == "meter-1"
    types = {r.find("m:ReadingType", ns).get("ref") for r in root.findall("m:MeterReading/m:Readings", ns)}
    assert "0.0.0.12.1.1.37.0.0.0.0.0.0.0.0.3.38.0" in types  # kW instantaneous
    latest = (await viewer.get("/api/v1/meter-readings", params={"latest": "true"})).json()
    assert len(latest["MeterReadings"]["MeterReading"][0]["Readings"]) == 2
    assert (await viewer.get("/api/v1/meter-readings", params={"meter": "rtu"})).status_code == 404


async def test_daily_report_json_csv_pdf(ops):
    from dms_hookspecs import Alarm, StudyResult

    now = time.time()
    for k in range(5):
        ops.kernel.emit(StudyResult("power_flow", "test", True, {"losses_mw": 0.5}, started=now - 400 + 60 * k, finished=now - 400 + 60 * k))
    ops.kernel.emit(Alarm("voltage 1.120 pu at node 'n2'", 2, source="limits", category="limit"))
    ops.kernel.emit(Alarm("voltage 1.120 pu at node 'n2'", 2, source="limits", category="limit"))  # same violation twice
    from dms_sqlhistorian import query

    sink = ops.kernel.sinks["historian"]
    for _ in range(200):
        if query.count(sink.engine, "study_results") >= 5 and query.count(sink.engine, "alarms") >= 2:
            break
        await asyncio.sleep(0.05)
    viewer = await ops.client("viewer")
    report = (await viewer.get("/api/v1/reports/daily", params={"since": now - 3600, "until": now + 60})).json()
    today = report["days"][-1]
    assert report["sources"] == {"workorders": True, "historian": True}
    assert today["losses_mwh"] == pytest.approx(0.5 * 240 / 3600)
    assert today["limit_violations"] == 1
    assert today["saifi"] == 0
    csv = await viewer.get("/api/v1/reports/daily", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines()[0].startswith("day,saifi,saidi_min")
    assert len(csv.text.splitlines()) >= 8
    pdf = await viewer.get("/api/v1/reports/daily", params={"format": "pdf"})
    assert pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    assert (await viewer.get("/api/v1/reports/daily", params={"since": 0})).status_code == 400


async def test_forecast_vs_actual_series(ops):
    """Forecasts from a ``forecast`` study result, stored by the historian, served beside the actual values."""
    from dms_hookspecs import StudyResult
    from dms_sqlhistorian import query

    now = time.time()
    stamps = [now - 900.0, now, now + 900.0]
    ops.kernel.emit(StudyResult("forecast", "gradient_boosting", True,
                                {"model": "gradient_boosting", "forecasts": {"rtu/U": {"time": stamps, "value": [20.1, 20.4, 20.6]}}}))
    sink = ops.kernel.sinks["historian"]
    for _ in range(200):
        if query.forecasts(sink.engine, ["rtu/U"], now - 3600, now + 3600):
            break
        await asyncio.sleep(0.05)
    viewer = await ops.client("viewer")
    found = (await viewer.get("/api/v1/historian/forecasts", params={"point": "rtu/U", "since": now - 1800, "until": now + 1800})).json()["forecasts"]
    assert [f["point"] for f in found] == ["rtu/U"]
    assert found[0]["value"] == [20.1, 20.4, 20.6] and found[0]["time"] == pytest.approx(stamps)
    assert (await viewer.get("/api/v1/historian/forecasts", params={"point": "rtu/U", "since": "soon"})).status_code == 400
    assert (await viewer.get("/api/v1/historian/forecasts")).status_code == 400
