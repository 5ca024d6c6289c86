"""Single-line (topology) diagram generated from the network model.

:func:`build_diagram` lays the grid out as a tree, deterministically (the same model gives the same
JSON), from the *normal* switch states so that the picture does not move when switches operate:

1. a spanning forest by breadth-first search from the source nodes over normally conducting
   branches (in service, switches normally closed), in model order; nodes it cannot reach are
   attached through the other branches (normally open ties, out-of-service equipment) to the
   first reached neighbour, and nodes of islands without a source start trees of their own;
2. a tidy tree layout from left to right: the depth of a node gives its column (``x``), leaves
   take consecutive rows and a parent sits midway between its first and last child (``y``). Two
   nodes in one column own disjoint row ranges, so no two nodes share a position;
3. branches in the tree are drawn as elbows from parent to child; branches outside it (ties,
   meshes) as straight links flagged ``tie``; one-terminal equipment (loads, PV, sources) as
   symbols in a row under its node; stations as boxes around their nodes.

Output (JSON-ready dict): ``nodes`` (``id``, ``name``, ``kv``, ``x``, ``y``, ``station``),
``edges`` (``id``, ``name``, ``kind`` line/transformer/switch, ``type`` e.g. ``breaker``,
``cim_class``, ``nodes``, ``points`` polyline, ``legs`` extra two-point segments (third
winding), ``mid`` symbol position, ``tie``, ``in_service``,
switches: ``normal_open``, ``open``; lines: ``length_km``), ``attachments`` (``id``, ``name``,
``kind`` load/source/pv/battery/machine/shunt, ``node``, ``x``, ``y``), ``stations`` (``id``,
``name``, ``nodes``, ``box`` ``[x0, y0, x1, y1]``), ``width``, ``height``.

:func:`diagram_state` gives what changes at run time: switch states, energisation from the
topology processor, node voltages of a power-flow or estimation result.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping, Sequence
from typing import Any

from dms_kernel.model import ACLineSegment, ConductingEquipment, EnergySource, NetworkModel, Switch

from .network import attachments, branches, conducts, element_kind, equipment_nodes, node_kv, stations, switch_type

__all__ = ["build_diagram", "diagram_state", "node_voltages", "DX", "DY"]

DX = 140.0  #: column width (px)
DY = 64.0  #: row height (px)
MARGIN = 60.0


def build_diagram(model: NetworkModel) -> dict[str, Any]:
    """The diagram of ``model`` (see the module docs)."""
    node_ids = model.node_ids()
    index = {n: k for k, n in enumerate(node_ids)}
    branch_list = branches(model)
    adjacency: dict[str, list[tuple[int, str, bool]]] = collections.defaultdict(list)  # node -> (branch no, other, normal)
    for k, (eq, nodes) in enumerate(branch_list):
        normal = conducts(eq, normal=True)
        for a in nodes:
            for b in nodes:
                if a != b:
                    adjacency[a].append((k, b, normal))

    parent: dict[str, tuple[str, int] | None] = {}
    children: dict[str, list[str]] = collections.defaultdict(list)
    roots: list[str] = []

    def grow(queue: collections.deque[str]) -> None:
        while queue:
            node = queue.popleft()
            for k, other, normal in adjacency[node]:
                if normal and other not in parent:
                    parent[other] = (node, k)
                    children[node].append(other)
                    queue.append(other)

    source_nodes: list[str] = []
    for source in model.of_type(EnergySource):
        for node in equipment_nodes(model, source)[:1]:
            if node not in source_nodes:
                source_nodes.append(node)
    for node in source_nodes:
        parent[node] = None
        roots.append(node)
    grow(collections.deque(source_nodes))
    while len(parent) < len(node_ids):
        attached = False
        for node in node_ids:  # attach the first unreached node that touches the tree through a tie
            if node in parent:
                continue
            via = next(((k, other) for k, other, _ in adjacency[node] if other in parent), None)
            if via is not None:
                parent[node] = (via[1], via[0])
                children[via[1]].append(node)
                grow(collections.deque([node]))
                attached = True
                break
        if attached:
            continue
        start = next(n for n in node_ids if n not in parent)  # an island without a source
        parent[start] = None
        roots.append(start)
        grow(collections.deque([start]))

    # tidy tree: depth -> column, leaves -> rows
    depth: dict[str, int] = {}
    row: dict[str, float] = {}
    next_row = 0.0
    for root in roots:
        depth[root] = 0
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            kids = children.get(node, [])
            if done:
                row[node] = (row[kids[0]] + row[kids[-1]]) / 2.0
                continue
            if not kids:
                row[node] = next_row
                next_row += 1.0
                continue
            stack.append((node, True))
            for kid in reversed(kids):
                depth[kid] = depth[node] + 1
                stack.append((kid, False))
        next_row += 0.5  # a gap between trees

    def xy(node: str) -> tuple[float, float]:
        return (MARGIN + depth[node] * DX, MARGIN + row[node] * DY)

    kv = node_kv(model)
    station_of: dict[str, str] = {}
    station_list = stations(model)
    for station in station_list:
        for node in station.nodes:
            station_of.setdefault(node, station.id)
    nodes_out = []
    for node in node_ids:
        obj = model.objects.get(node)
        x, y = xy(node)
        nodes_out.append(
            {
                "id": node,
                "name": getattr(obj, "name", "") or node,
                "kv": kv.get(node),
                "x": round(x, 2),
                "y": round(y, 2),
                "station": station_of.get(node),
            }
        )

    tree_branches = {step[1] for step in parent.values() if step is not None}
    edges_out = []
    for k, (eq, nodes) in enumerate(branch_list):
        tie = k not in tree_branches
        if not tie:
            child = next(n for n in nodes if parent.get(n) is not None and parent[n][1] == k)  # type: ignore[index]
            upper = parent[child][0]  # type: ignore[index]
            points = _elbow(xy(upper), xy(child))
            ordered = [upper, child, *[n for n in nodes if n not in (upper, child)]]
        else:
            ordered = list(nodes)
            points = [xy(n) for n in ordered[:2]]
        legs = [[xy(ordered[0]), xy(extra)] for extra in ordered[2:]]  # third winding: a leg from the first node
        mid = _midpoint(points[-2:])
        edge: dict[str, Any] = {
            "id": eq.mrid,
            "name": eq.name or eq.mrid,
            "kind": element_kind(model, eq),
            "type": switch_type(eq) if isinstance(eq, Switch) else element_kind(model, eq),
            "cim_class": type(eq).__name__,
            "nodes": ordered,
            "points": [[round(x, 2), round(y, 2)] for x, y in points],
            "legs": [[[round(x, 2), round(y, 2)] for x, y in leg] for leg in legs],
            "mid": [round(mid[0], 2), round(mid[1], 2)],
            "tie": tie,
            "in_service": bool(eq.in_service),
            "station": station_of.get(ordered[0]) if all(station_of.get(n) == station_of.get(ordered[0]) for n in ordered) else None,
        }
        if isinstance(eq, Switch):
            edge["normal_open"] = bool(eq.normal_open)
            edge["open"] = bool(eq.open)
        if isinstance(eq, ACLineSegment):
            edge["length_km"] = eq.length_km
        edges_out.append(edge)

    at_node: dict[str, list[ConductingEquipment]] = collections.defaultdict(list)
    for eq, node in attachments(model):
        at_node[node].append(eq)
    attachments_out = []
    for node in node_ids:
        items = at_node.get(node, [])
        if not items:
            continue
        x, y = xy(node)
        spacing = min(18.0, (DX * 0.8) / max(len(items), 1))
        for k, eq in enumerate(items):
            attachments_out.append(
                {
                    "id": eq.mrid,
                    "name": eq.name or eq.mrid,
                    "kind": element_kind(model, eq),
                    "cim_class": type(eq).__name__,
                    "node": node,
                    "x": round(x + (k - (len(items) - 1) / 2.0) * spacing, 2),
                    "y": round(y + DY * 0.38, 2),
                    "in_service": bool(eq.in_service),
                }
            )

    stations_out = []
    for station in station_list:
        xs = [xy(n)[0] for n in station.nodes]
        ys = [xy(n)[1] for n in station.nodes]
        stations_out.append(
            {
                "id": station.id,
                "name": station.name,
                "nodes": list(station.nodes),
                "box": [round(min(xs) - DX * 0.3, 2), round(min(ys) - DY * 0.45, 2), round(max(xs) + DX * 0.3, 2), round(max(ys) + DY * 0.55, 2)],
            }
        )
    width = max((n["x"] for n in nodes_out), default=0.0) + MARGIN + DX * 0.5
    height = max((n["y"] for n in nodes_out), default=0.0) + MARGIN + DY * 0.5
    return {
        "model": model.name,
        "nodes": nodes_out,
        "edges": edges_out,
        "attachments": attachments_out,
        "stations": stations_out,
        "width": round(width, 2),
        "height": round(height, 2),
    }


def _elbow(a: tuple[float, float], b: tuple[float, float]) -> list[tuple[float, float]]:
    """Parent ``a`` to child ``b``: across half a column, down/up to the child's row, across to it."""
    if abs(a[1] - b[1]) < 1e-9:
        return [a, b]
    bend = a[0] + (b[0] - a[0]) * 0.35
    return [a, (bend, a[1]), (bend, b[1]), b]


def _midpoint(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    (x0, y0), (x1, y1) = points[0], points[-1]
    return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)


# -- run-time state --------------------------------------------------------------------------


def node_voltages(result: Any) -> dict[str, list[float | None]]:
    """``vm_pu`` per node and phase (1..3; None where a phase has no value) of a power-flow or
    estimation result (:mod:`dms_kernel.model.results` schema); empty without a result."""
    data = getattr(result, "data", None)
    if not isinstance(data, Mapping) or "nodes" not in data:
        return {}
    table = data["nodes"]
    try:
        nodes, phases, values = table["node"], table["phase"], table["vm_pu"]
    except (KeyError, TypeError):
        return {}
    out: dict[str, list[float | None]] = {}
    for node, phase, vm in zip(list(nodes), list(phases), list(values), strict=False):
        slot = out.setdefault(str(node), [None, None, None])
        try:
            p = int(phase)
            v = float(vm)
        except (TypeError, ValueError):
            continue
        if 1 <= p <= 3 and math.isfinite(v):
            slot[p - 1] = round(v, 6)
    return out


def diagram_state(model: NetworkModel, topology: Any, result: Any = None) -> dict[str, Any]:
    """Switch states, energisation and node voltages now.

    :param topology: a :class:`~dms_kernel.model.topology.TopologyProcessor` of ``model`` (None:
        everything counts as energised).
    :param result: the latest power-flow/estimation :class:`~dms_hookspecs.StudyResult` or None.
    """
    switches = {
        s.mrid: {"open": bool(topology.switch_open(s.mrid) if topology is not None else s.open), "normal_open": bool(s.normal_open)}
        for s in model.switches()
    }
    if topology is not None:
        deenergised_nodes = topology.deenergised_nodes()
        deenergised_equipment = topology.deenergised_equipment()
        islands = topology.island_count
    else:
        deenergised_nodes, deenergised_equipment, islands = [], [], None
    voltages = node_voltages(result)
    meta = None
    if result is not None:
        meta = {
            "study": getattr(result, "study", None),
            "solver": getattr(result, "solver", None),
            "converged": bool(getattr(result, "converged", False)),
            "finished": _timestamp(getattr(result, "finished", None)),
        }
    return {
        "switches": switches,
        "deenergised_nodes": deenergised_nodes,
        "deenergised_equipment": deenergised_equipment,
        "islands": islands,
        "voltages": voltages,
        "result": meta,
    }


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
