"""Model, topology and CIM export endpoints on the CIGRE MV benchmark model."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from dms_web.testing import deployment


@pytest.fixture
def web_plugins():
    import dms_cim.plugin
    import dms_pandapower.plugin

    return [("pandapower", dms_pandapower.plugin), ("cim", dms_cim.plugin)]


MODEL = pytest.mark.deployment(deployment().replace('name = "web-test"', 'name = "web-test"\nmodel = "cigre_mv"'))


@MODEL
async def test_model_elements_and_topology(web):
    viewer = await web.client("viewer")
    summary = (await viewer.get("/api/v1/model")).json()
    assert summary["counts"]["ACLineSegment"] >= 10
    switches = (await viewer.get("/api/v1/model/elements", params={"type": "Switch"})).json()
    assert switches["total"] >= 1 and all("open" in s for s in switches["elements"])
    lines = (await viewer.get("/api/v1/model/elements", params={"type": "ACLineSegment", "limit": 2})).json()
    assert lines["total"] >= 10 and len(lines["elements"]) == 2 and len(lines["elements"][0]["nodes"]) == 2
    mrid = lines["elements"][0]["mrid"]
    detail = (await viewer.get(f"/api/v1/model/elements/{mrid}")).json()
    assert detail["type"] == "ACLineSegment" and detail["attributes"]["mrid"] == mrid
    assert (await viewer.get("/api/v1/model/elements/nope")).status_code == 404
    topo = (await viewer.get("/api/v1/topology")).json()
    assert topo["islands"] >= 1 and topo["energised_nodes"]
    assert {s["mrid"] for s in topo["switches"]} >= {s["mrid"] for s in switches["elements"] if s["type"] != "Switch"} - {None}


@MODEL
async def test_cim_export(web):
    viewer = await web.client("viewer")
    response = await viewer.get("/api/v1/cim/export")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/rdf+xml")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"
    assert any(child.tag.endswith("ACLineSegment") for child in root)
    cgmes = await viewer.get("/api/v1/cim/export", params={"profile": "cgmes"})
    assert cgmes.status_code == 200 and b"CIM-schema-cim16" in cgmes.content
    assert (await viewer.get("/api/v1/cim/export", params={"profile": "nope"})).status_code == 400
