"""Network applications page and API: newest VVO/FLISR/protection results, run on demand, roles."""

from __future__ import annotations

import asyncio

import pytest

from dms_hookspecs import StudyResult, hookimpl
from dms_web.testing import wait_for


class vvo_plugin:  # noqa: N801
    """A ``vvo`` study answering with a fixed plan (the real optimiser is tested in plugins/vvo)."""

    runs = 0

    @staticmethod
    @hookimpl
    def dms_studies():
        return ["vvo"]

    @staticmethod
    @hookimpl
    def dms_run_study(study, model, snapshot, options):
        if study != "vvo":
            return None
        vvo_plugin.runs += 1
        return StudyResult("vvo", "vvo", True, {
            "mode": "advisory", "objective": "losses", "feasible": True,
            "before": {"v_min_pu": 0.94, "v_max_pu": 1.03, "losses_mw": 0.2, "demand_mw": 10.0, "violation": 0.01},
            "after": {"v_min_pu": 0.96, "v_max_pu": 1.05, "losses_mw": 0.18, "demand_mw": 10.1, "violation": 0.0},
            "setpoints": [{"control": "tc", "name": "T1 OLTC", "kind": "tap", "point": "rtu/Tap", "before": 0, "after": -2, "text": "T1 OLTC: tap -2"}],
        }, "losses: 0.2 -> 0.18")


@pytest.fixture
def web_plugins():
    import dms_alarms.plugin

    return [("alarms", dms_alarms.plugin), ("fake_vvo", vvo_plugin)]


async def test_results_are_kept_from_startup_and_shown(web):
    flisr = StudyResult("flisr", "flisr", True, {"mode": "advisory", "tripped_name": "F1 CB", "faulted": "F1 S2",
                                                  "steps": [{"switch": "s", "name": "F1 SW2", "action": "open", "purpose": "isolate", "point": "rtu/CB"}],
                                                  "restored_mw": 2.4, "unrestored_mw": 0.6, "switching_order": "SWITCHING ORDER — FLISR\n   1  OPEN F1 SW2",
                                                  "internal": list(range(5))}, "fault below F1 CB")
    web.kernel.emit(flisr)
    viewer = await web.client("viewer")

    async def results():
        return (await viewer.get("/api/v1/applications")).json()["results"]

    for _ in range(100):
        if await results():
            break
        await asyncio.sleep(0.02)
    (found,) = await results()
    assert found["study"] == "flisr" and found["data"]["steps"][0]["name"] == "F1 SW2"
    assert "internal" not in found["data"]  # only the fields the page shows
    page = await viewer.get("/applications")
    assert page.status_code == 200 and "FLISR — switching order" in page.text and "Run VVO now" not in page.text


async def test_run_on_demand_needs_an_engineer(web):
    viewer, operator, engineer = await web.client("viewer"), await web.client("operator"), await web.client("engineer")
    assert (await viewer.post("/api/v1/applications/vvo/run")).status_code == 403
    assert (await operator.post("/api/v1/applications/vvo/run")).status_code == 403
    before = vvo_plugin.runs
    response = await engineer.post("/api/v1/applications/vvo/run")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["setpoints"][0]["point"] == "rtu/Tap" and vvo_plugin.runs == before + 1
    assert (await engineer.post("/api/v1/applications/flisr/run")).status_code == 503  # no flisr plugin here
    assert (await engineer.post("/api/v1/applications/nonsense/run")).status_code == 400
    assert (await engineer.get("/api/v1/protection/plot", params={"node": "bus 1"})).status_code == 503
    shown = (await viewer.get("/api/v1/applications")).json()["results"]
    assert [r["study"] for r in shown] == ["vvo"]
    await wait_for(lambda: True)
