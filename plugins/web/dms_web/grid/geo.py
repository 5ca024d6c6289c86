"""Geographic map data from CIM ``Location`` / position points, as GeoJSON.

:func:`build_geojson` returns a ``FeatureCollection`` with one feature per located element:

* ``kind = "line"`` — a ``LineString`` from the line's Location points;
* ``kind = "node"`` — a ``Point`` per node (for voltage colouring);
* ``kind = "switch"`` / ``"transformer"`` — a ``Point``: the element's Location, else the middle
  between its nodes;
* ``kind = "load"``, ``"pv"``, ``"battery"``, ``"source"``, ``"machine"``, ``"shunt"`` — a ``Point``;
* ``kind = "substation"`` — a ``Polygon`` around the station's nodes (a small square for one).

Node positions are not a CIM attribute of ``ConnectivityNode``; they are taken from the
one-point Location of equipment at the node, else from the line end at the node (first point at
terminal 1, last point at terminal 2), else the average of located neighbours.

Feature properties: ``id`` (mRID), ``name``, ``kind``, ``type`` (CIM class), switches also
``open``/``normal_open``, lines ``length_km``, every feature ``nodes`` (its node mRIDs).
RFC 7946 wants WGS 84 longitude/latitude; a model with other coordinates (a schematic or
projected system, e.g. the CIGRE benchmark's) is marked with the foreign member
``"coordinates": "local"`` (else ``"wgs84"``) so that the map draws it on a plain plane
(no tiles).
"""

from __future__ import annotations

import collections
from typing import Any

from dms_kernel.model import ACLineSegment, ConductingEquipment, Location, NetworkModel, Switch

from .network import element_kind, equipment_nodes, stations

__all__ = ["build_geojson", "node_positions"]

_WGS84 = ("", "wgs84", "wgs 84", "epsg:4326", "4326", "urn:ogc:def:crs:ogc:1.3:crs84")


def _location_points(model: NetworkModel, eq: Any) -> list[tuple[float, float]]:
    location = model.objects.get(getattr(eq, "location", None) or "")
    if isinstance(location, Location):
        return [(float(x), float(y)) for x, y in location.points]
    return []


def node_positions(model: NetworkModel) -> dict[str, tuple[float, float]]:
    """A position per node where one can be derived (see the module docs)."""
    positions: dict[str, tuple[float, float]] = {}
    equipment = model.of_type(ConductingEquipment)
    for eq in equipment:  # one-point locations of equipment at a single node
        points = _location_points(model, eq)
        nodes = equipment_nodes(model, eq)
        if len(points) == 1 and len(nodes) == 1:
            positions.setdefault(nodes[0], points[0])
    for eq in equipment:  # line ends
        if not isinstance(eq, ACLineSegment):
            continue
        points = _location_points(model, eq)
        if len(points) < 2:
            continue
        terminals = model.terminals(eq)
        for terminal, point in zip(terminals[:2], (points[0], points[-1]), strict=False):
            node = model.node_of(terminal)
            if node is not None and terminal.connected:
                positions.setdefault(node, point)
    # the rest: average of located neighbours, repeated while it places nodes
    neighbours: dict[str, list[str]] = collections.defaultdict(list)
    for eq in equipment:
        nodes = equipment_nodes(model, eq)
        for a in nodes:
            neighbours[a].extend(b for b in nodes if b != a)
    pending = [n for n in model.node_ids() if n not in positions]
    while pending:
        placed = {}
        for node in pending:
            known = [positions[n] for n in neighbours[node] if n in positions]
            if known:
                placed[node] = (sum(p[0] for p in known) / len(known), sum(p[1] for p in known) / len(known))
        if not placed:
            break
        positions.update(placed)
        pending = [n for n in pending if n not in positions]
    return positions


def _is_wgs84(model: NetworkModel, points: list[tuple[float, float]]) -> bool:
    systems = {loc.coordinate_system.strip().lower() for loc in model.of_type(Location)}
    if systems - set(_WGS84):
        return False
    if not points:
        return True
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if not (all(-180 <= x <= 180 for x in xs) and all(-90 <= y <= 90 for y in ys)):
        return False
    # a schematic grid in small integer units (e.g. CIGRE's 0..20) is not a map
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    return extent < 5.0


def _point(xy: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [xy[0], xy[1]]}


def build_geojson(model: NetworkModel) -> dict[str, Any]:
    """The located elements of ``model`` as a GeoJSON FeatureCollection (see the module docs)."""
    positions = node_positions(model)
    features: list[dict[str, Any]] = []
    all_points: list[tuple[float, float]] = list(positions.values())

    def feature(geometry: dict[str, Any], **properties: Any) -> None:
        features.append({"type": "Feature", "id": properties["id"], "geometry": geometry, "properties": properties})

    for station in stations(model):
        located = [positions[n] for n in station.nodes if n in positions]
        if not located:
            continue
        xs, ys = [p[0] for p in located], [p[1] for p in located]
        pad = max(max(xs) - min(xs), max(ys) - min(ys)) * 0.1 or 0.0
        pad = pad or (0.0005 if _is_wgs84(model, all_points) else 0.3)
        x0, y0, x1, y1 = min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        feature({"type": "Polygon", "coordinates": [ring]}, id=station.id, name=station.name, kind="substation",
                type="Substation", nodes=list(station.nodes))

    for eq in model.of_type(ConductingEquipment):
        nodes = equipment_nodes(model, eq)
        if not nodes:
            continue
        kind = element_kind(model, eq)
        props: dict[str, Any] = {"id": eq.mrid, "name": eq.name or eq.mrid, "kind": kind, "type": type(eq).__name__,
                                 "nodes": nodes, "in_service": bool(eq.in_service)}
        points = _location_points(model, eq)
        if isinstance(eq, ACLineSegment):
            if len(points) < 2:
                points = [positions[n] for n in nodes if n in positions]
            if len(points) < 2:
                continue
            props["length_km"] = eq.length_km
            feature({"type": "LineString", "coordinates": [[x, y] for x, y in points]}, **props)
            continue
        if isinstance(eq, Switch):
            props["open"] = bool(eq.open)
            props["normal_open"] = bool(eq.normal_open)
        if len(points) >= 1 and len(nodes) == 1:
            xy = points[0]
        else:
            located = [positions[n] for n in nodes if n in positions]
            if not located:
                continue
            xy = (sum(p[0] for p in located) / len(located), sum(p[1] for p in located) / len(located))
        feature(_point(xy), **props)

    for node_id in model.node_ids():
        if node_id in positions:
            node = model.objects.get(node_id)
            feature(_point(positions[node_id]), id=node_id, name=getattr(node, "name", "") or node_id, kind="node",
                    type=type(node).__name__ if node is not None else "TopologicalNode", nodes=[node_id])

    bbox = None
    if all_points:
        xs, ys = [p[0] for p in all_points], [p[1] for p in all_points]
        bbox = [min(xs), min(ys), max(xs), max(ys)]
    return {
        "type": "FeatureCollection",
        "model": model.name,
        "coordinates": "wgs84" if _is_wgs84(model, all_points) else "local",
        "bbox": bbox,
        "features": features,
    }
