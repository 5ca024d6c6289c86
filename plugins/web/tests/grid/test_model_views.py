"""Diagram layout, diagram state, GeoJSON and feeder profile on the example networks."""

from __future__ import annotations

import json
import math

import pytest

from dms_kernel.model import ConductingEquipment, Location
from dms_kernel.model.topology import TopologyProcessor
from dms_pandapower.plugin import _solver
from dms_web.grid import build_diagram, build_geojson, diagram_state, feeder_list, feeder_profile
from dms_web.grid.diagram import node_voltages
from dms_web.grid.geo import node_positions
from dms_web.grid.network import equipment_nodes


@pytest.mark.parametrize("name", ["cigre", "oberrhein"])
def test_layout_covers_every_node_and_element(name, request):
    model = request.getfixturevalue(name)
    diagram = build_diagram(model)
    assert {n["id"] for n in diagram["nodes"]} == set(model.node_ids())
    drawn = {e["id"] for e in diagram["edges"]} | {a["id"] for a in diagram["attachments"]}
    connected = {eq.mrid for eq in model.of_type(ConductingEquipment) if equipment_nodes(model, eq)}
    assert drawn == connected
    positions = [(n["x"], n["y"]) for n in diagram["nodes"]]
    assert len(set(positions)) == len(positions), "two nodes share a position"
    assert all(math.isfinite(v) for p in positions for v in p)
    for edge in diagram["edges"]:
        assert len(edge["points"]) >= 2 and len(edge["mid"]) == 2
    # deterministic: a fresh model gives the same JSON
    again = build_diagram(_fresh(name))
    assert json.dumps(diagram, sort_keys=True) == json.dumps(again, sort_keys=True)


def _fresh(name):
    from dms_pandapower.examples import load_example

    return load_example({"cigre": "cigre_mv", "oberrhein": "mv_oberrhein"}[name])


def test_cigre_layout_has_the_substation_and_ties(cigre):
    diagram = build_diagram(cigre)
    (station,) = diagram["stations"]
    assert {"bus_0", "bus_1", "bus_12"} <= set(station["nodes"])
    ties = {e["id"] for e in diagram["edges"] if e["tie"]}
    normally_open = {s.mrid for s in cigre.switches() if s.normal_open}
    assert normally_open <= ties  # S1, S2, S3 close the loops of the benchmark
    x0, y0, x1, y1 = station["box"]
    for node in diagram["nodes"]:
        inside = x0 <= node["x"] <= x1 and y0 <= node["y"] <= y1
        assert inside == (node["station"] == station["id"]), node


def test_open_switch_deenergises_downstream(cigre):
    topology = TopologyProcessor(cigre)
    before = diagram_state(cigre, topology)
    assert before["deenergised_nodes"] == []
    assert before["switches"]["switch_7"] == {"open": False, "normal_open": False}
    feeder_2 = next(f for f in feeder_list(cigre) if f["head"] == "line_10")
    topology.set_switch("switch_7", True)  # the HV breaker of the second transformer
    state = diagram_state(cigre, topology)
    assert state["switches"]["switch_7"]["open"] is True
    dead = set(state["deenergised_nodes"])
    assert {"bus_12", "bus_13", "bus_14"} <= dead
    assert "bus_1" not in dead and "bus_2" not in dead
    assert {"trafo_1", "line_10"} <= set(state["deenergised_equipment"])
    assert "line_0" not in state["deenergised_equipment"]
    assert feeder_2["nodes"] == 4
    assert json.dumps(state)  # JSON-ready


def test_geojson_from_model_locations(cigre, oberrhein):
    for model, kind in ((cigre, "local"), (oberrhein, "wgs84")):
        geo = build_geojson(model)
        assert geo["type"] == "FeatureCollection" and geo["coordinates"] == kind
        json.dumps(geo, allow_nan=False)
        ids = set()
        for feature in geo["features"]:
            assert feature["type"] == "Feature"
            geometry = feature["geometry"]
            assert geometry["type"] in ("Point", "LineString", "Polygon")
            coords = geometry["coordinates"]
            flat = [coords] if geometry["type"] == "Point" else coords if geometry["type"] == "LineString" else coords[0]
            assert all(len(p) == 2 and all(isinstance(v, float | int) and math.isfinite(v) for v in p) for p in flat)
            if geometry["type"] == "LineString":
                assert len(coords) >= 2
            if geometry["type"] == "Polygon":
                assert coords[0][0] == coords[0][-1]
            ids.add((feature["properties"]["kind"], feature["id"]))
        kinds = {k for k, _ in ids}
        assert {"line", "switch", "load", "node", "substation"} <= kinds
        # lines carry their Location points
        for feature in geo["features"]:
            if feature["properties"]["kind"] == "line":
                line = model.get(feature["id"])
                if line.location:
                    assert feature["geometry"]["coordinates"] == [list(p) for p in model.get(line.location, Location).points]
        assert len(node_positions(model)) == len(model.node_ids())
    # Oberrhein lies in the Upper Rhine valley
    bbox = build_geojson(oberrhein)["bbox"]
    assert 7.0 < bbox[0] < bbox[2] < 9.0 and 48.0 < bbox[1] < bbox[3] < 49.5


def test_feeder_profile_from_a_real_power_flow(cigre):
    result = _solver.run(cigre)
    assert result.converged
    voltages = node_voltages(result)
    feeders = feeder_list(cigre)
    assert [f["name"] for f in feeders] == ["Line 1-2", "Line 12-13"]
    profile = feeder_profile(cigre, "line_0", result, (0.95, 1.05))
    points = {p["node"]: p for p in profile["points"]}
    assert profile["points"][0]["node"] == "bus_1" and profile["points"][0]["distance_km"] == 0.0
    assert len(points) == feeders[0]["nodes"] + 1
    for point in profile["points"][1:]:
        parent = points[point["parent"]]
        assert point["distance_km"] >= parent["distance_km"]  # monotonic along every path
        edge = cigre.get(point["via"])
        if edge.__class__.__name__ == "ACLineSegment":
            assert point["distance_km"] == pytest.approx(parent["distance_km"] + edge.length_km)
        assert point["vm_pu"] == voltages[point["node"]]
        assert all(0.9 < v < 1.1 for v in point["vm_pu"])
    assert points["bus_2"]["distance_km"] == pytest.approx(2.82)
    assert max(p["distance_km"] for p in profile["points"]) > 10.0
    # the voltage falls from the busbar towards the feeder end
    far = max(profile["points"], key=lambda p: p["distance_km"])
    assert far["vm_pu"][0] < points["bus_1"]["vm_pu"][0]
    assert profile["band"] == [0.95, 1.05]
    assert feeder_profile(cigre, "Line 12-13")["points"][0]["node"] == "bus_12"
