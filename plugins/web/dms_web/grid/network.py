"""What the grid views need from a network model: element kinds, stations, feeders, points.

Shared by :mod:`.diagram`, :mod:`.geo` and :mod:`.profile`; reads the model only (switch states
from ``Switch.open``/``normal_open``), never changes it.

* **Branches** are conducting equipment with terminals on two or more distinct nodes (lines,
  transformers, switches); **attachments** are one-terminal equipment (loads, sources, PV,
  batteries, machines, shunts).
* **Stations** are the Substation objects of the model (their nodes: those of equipment whose
  container is the substation or one of its voltage levels); without Substation objects, one
  station per group of source buses: the nodes of the sources, every node reached from them
  through transformers, and the nodes between switches and transformers that no line touches
  (e.g. between an HV breaker and its transformer).
* **Feeders** start at a head branch: the model's Feeder objects (head terminal's equipment), or
  else every in-service branch from a station node to a node outside all stations. A feeder's
  nodes are found by a breadth-first search from the head's far side over conducting branches
  (closed switches, in service), never entering a station node; a node belongs to the feeder
  that reaches it first (heads in model order).
"""

from __future__ import annotations

import collections
import attrs

from dms_kernel.model import (
    ACLineSegment,
    BatteryUnit,
    ConductingEquipment,
    EnergyConsumer,
    EnergySource,
    Feeder,
    LinearShuntCompensator,
    Measurement,
    NetworkModel,
    PhotoVoltaicUnit,
    PowerElectronicsConnection,
    PowerTransformer,
    Substation,
    Switch,
    SynchronousMachine,
    Terminal,
    VoltageLevel,
)

__all__ = [
    "Station",
    "FeederInfo",
    "element_kind",
    "equipment_nodes",
    "branches",
    "attachments",
    "stations",
    "feeders",
    "node_kv",
    "measurement_points",
]

_SWITCH_TYPES = {
    "Breaker": "breaker",
    "Recloser": "recloser",
    "LoadBreakSwitch": "load_break_switch",
    "Disconnector": "disconnector",
    "Fuse": "fuse",
    "Sectionaliser": "sectionaliser",
    "Jumper": "jumper",
    "Switch": "switch",
}


@attrs.frozen
class Station:
    """A substation: ``nodes`` in model order."""

    id: str
    name: str
    nodes: tuple[str, ...]


@attrs.frozen
class FeederInfo:
    """A feeder: its head branch, the station-side node (distance 0) and the nodes it feeds now."""

    id: str
    name: str
    head: str
    head_node: str
    nodes: tuple[str, ...]


def element_kind(model: NetworkModel, eq: ConductingEquipment) -> str:
    """``line``, ``transformer``, ``switch``, ``load``, ``source``, ``pv``, ``battery``, ``machine``, ``shunt`` or ``equipment``."""
    if isinstance(eq, ACLineSegment):
        return "line"
    if isinstance(eq, PowerTransformer):
        return "transformer"
    if isinstance(eq, Switch):
        return "switch"
    if isinstance(eq, EnergyConsumer):
        return "load"
    if isinstance(eq, EnergySource):
        return "source"
    if isinstance(eq, SynchronousMachine):
        return "machine"
    if isinstance(eq, LinearShuntCompensator):
        return "shunt"
    if isinstance(eq, PowerElectronicsConnection):
        units = [u for u in model.of_type(BatteryUnit) if u.power_electronics_connection == eq.mrid]
        return "battery" if units else "pv"
    return "equipment"


def switch_type(eq: Switch) -> str:
    """The switch family member in snake case (``breaker``, ``load_break_switch``, …)."""
    return _SWITCH_TYPES.get(type(eq).__name__, "switch")


def equipment_nodes(model: NetworkModel, eq: ConductingEquipment) -> list[str]:
    """Distinct nodes of the connected terminals of ``eq``, in terminal order."""
    nodes: list[str] = []
    for terminal_id in eq.terminals:
        terminal = model.objects.get(terminal_id)
        if not isinstance(terminal, Terminal) or not terminal.connected:
            continue
        node = model.node_of(terminal)
        if node is not None and node not in nodes:
            nodes.append(node)
    return nodes


def branches(model: NetworkModel) -> list[tuple[ConductingEquipment, list[str]]]:
    """``(equipment, nodes)`` of every branch (two or more nodes), in model order."""
    result = []
    for eq in model.of_type(ConductingEquipment):
        nodes = equipment_nodes(model, eq)
        if len(nodes) >= 2:
            result.append((eq, nodes))
    return result


def attachments(model: NetworkModel) -> list[tuple[ConductingEquipment, str]]:
    """``(equipment, node)`` of every one-node equipment, in model order."""
    result = []
    for eq in model.of_type(ConductingEquipment):
        nodes = equipment_nodes(model, eq)
        if len(nodes) == 1:
            result.append((eq, nodes[0]))
    return result


def conducts(eq: ConductingEquipment, normal: bool = False) -> bool:
    """Whether a branch conducts: in service and, for a switch, closed (``normal``: normally closed)."""
    if not eq.in_service:
        return False
    if isinstance(eq, Switch):
        return not (eq.normal_open if normal else eq.open)
    return True


def node_kv(model: NetworkModel) -> dict[str, float]:
    """Nominal kV per node, from its container's base voltage or its equipment's."""
    kv: dict[str, float] = {}
    for node_id in model.node_ids():
        node = model.objects.get(node_id)
        container = model.objects.get(getattr(node, "container", None) or "")
        value = None
        if isinstance(container, VoltageLevel):
            value = model.nominal_kv(container)
        elif node is not None:
            value = model.nominal_kv(node)
        if value:
            kv[node_id] = value
    for eq, nodes in branches(model):
        if isinstance(eq, PowerTransformer):
            for end in model.ends(eq):
                terminal = model.objects.get(end.terminal or "")
                if isinstance(terminal, Terminal):
                    node = model.node_of(terminal)
                    if node is not None and node not in kv and end.rated_u_kv:
                        kv[node] = end.rated_u_kv
    # remaining nodes: through lines and switches from known ones
    adjacency = collections.defaultdict(list)
    for eq, nodes in branches(model):
        if not isinstance(eq, PowerTransformer):
            for a in nodes:
                adjacency[a].extend(n for n in nodes if n != a)
    queue = collections.deque(kv)
    while queue:
        node = queue.popleft()
        for other in adjacency[node]:
            if other not in kv:
                kv[other] = kv[node]
                queue.append(other)
    return kv


def _container_substation(model: NetworkModel, container: str | None) -> str | None:
    obj = model.objects.get(container or "")
    if isinstance(obj, Substation):
        return obj.mrid
    if isinstance(obj, VoltageLevel):
        return obj.substation
    if isinstance(obj, Feeder):
        return None
    return None


def stations(model: NetworkModel) -> list[Station]:
    """The substations of the model with their nodes (see the module docs)."""
    substations = model.of_type(Substation)
    if substations:
        members: dict[str, dict[str, None]] = {s.mrid: {} for s in substations}
        taken: set[str] = set()
        for node_id in model.node_ids():
            node = model.objects.get(node_id)
            sub = _container_substation(model, getattr(node, "container", None))
            if sub in members and node_id not in taken:
                members[sub][node_id] = None
                taken.add(node_id)
        for eq in model.of_type(ConductingEquipment):
            sub = _container_substation(model, eq.container)
            if sub in members:
                for node in equipment_nodes(model, eq):
                    if node not in taken:
                        members[sub][node] = None
                        taken.add(node)
        return [Station(s.mrid, s.name or s.mrid, tuple(members[s.mrid])) for s in substations if members[s.mrid]]
    return _derived_stations(model)


def _derived_stations(model: NetworkModel) -> list[Station]:
    at_node: dict[str, list[ConductingEquipment]] = collections.defaultdict(list)
    eq_nodes: dict[str, list[str]] = {}
    for eq, nodes in branches(model):
        eq_nodes[eq.mrid] = nodes
        for node in nodes:
            at_node[node].append(eq)
    sources = [(s, equipment_nodes(model, s)) for s in model.of_type(EnergySource)]
    result: list[Station] = []
    taken: set[str] = set()
    for source, nodes in sources:
        if not nodes or nodes[0] in taken:
            continue
        group = {nodes[0]: None}
        queue = [nodes[0]]
        while queue:
            node = queue.pop(0)
            for eq in at_node[node]:
                if not isinstance(eq, PowerTransformer | Switch):
                    continue
                for other in eq_nodes[eq.mrid]:
                    if other in group or other in taken:
                        continue
                    if isinstance(eq, Switch) and any(isinstance(e, ACLineSegment) for e in at_node[other]):
                        continue  # a switch leading onto a line is a feeder head
                    group[other] = None
                    queue.append(other)
        taken.update(group)
        name = source.name or source.mrid
        transformers = [eq for node in group for eq in at_node[node] if isinstance(eq, PowerTransformer)]
        if transformers:
            name = f"Substation {transformers[0].name or transformers[0].mrid}"
        result.append(Station(f"station_{source.mrid}", name, tuple(group)))
    return result


def feeders(model: NetworkModel) -> list[FeederInfo]:
    """The feeders with their current nodes (see the module docs)."""
    station_nodes = {node for station in stations(model) for node in station.nodes}
    eq_nodes = {eq.mrid: nodes for eq, nodes in branches(model)}
    heads: list[tuple[str, str, ConductingEquipment, str, list[str]]] = []
    feeder_objects = model.of_type(Feeder)
    if feeder_objects:
        for feeder in feeder_objects:
            terminal = model.objects.get(feeder.normal_head_terminal or "")
            if not isinstance(terminal, Terminal):
                continue
            eq = model.objects.get(terminal.conducting_equipment)
            if not isinstance(eq, ConductingEquipment) or eq.mrid not in eq_nodes:
                continue
            nodes = eq_nodes[eq.mrid]
            inside = [n for n in nodes if n in station_nodes]
            near = inside[0] if inside else model.node_of(terminal) or nodes[0]
            if len(inside) == len(nodes):  # both ends in the station (a feeder bay): the busbar side is the
                near = _nearest_source_side(model, nodes, eq_nodes)
            far = [n for n in nodes if n != near]
            heads.append((feeder.mrid, feeder.name or feeder.mrid, eq, near, far))
    else:
        for eq_id, nodes in eq_nodes.items():
            eq = model.objects[eq_id]
            inside = [n for n in nodes if n in station_nodes]
            outside = [n for n in nodes if n not in station_nodes]
            if inside and outside:
                heads.append((eq.mrid, eq.name or eq.mrid, eq, inside[0], outside))  # type: ignore[arg-type]
    # membership: multi-source BFS over conducting branches
    adjacency: dict[str, list[tuple[ConductingEquipment, str]]] = collections.defaultdict(list)
    for eq_id, nodes in eq_nodes.items():
        eq = model.objects[eq_id]
        if conducts(eq):  # type: ignore[arg-type]
            for a in nodes:
                adjacency[a].extend((eq, b) for b in nodes if b != a)  # type: ignore[misc]
    blocked = station_nodes | {near for _, _, _, near, _ in heads}
    owner: dict[str, str] = {}
    order: dict[str, list[str]] = {fid: [] for fid, *_ in heads}
    queue: collections.deque[str] = collections.deque()
    for fid, _, eq, _, far in heads:
        if not conducts(eq):
            continue
        for node in far:
            if node not in owner and (node not in blocked or node in far):
                owner[node] = fid
                order[fid].append(node)
                queue.append(node)
    while queue:
        node = queue.popleft()
        for eq, nxt in adjacency[node]:
            if nxt not in owner and nxt not in blocked:
                owner[nxt] = owner[node]
                order[owner[node]].append(nxt)
                queue.append(nxt)
    return [FeederInfo(fid, name, eq.mrid, near, tuple(order[fid])) for fid, name, eq, near, _ in heads]


def _nearest_source_side(model: NetworkModel, nodes: list[str], eq_nodes: dict[str, list[str]]) -> str:
    """Of ``nodes``, the one with the fewest hops to a source node (over all branches)."""
    adjacency: dict[str, list[str]] = collections.defaultdict(list)
    for branch_nodes in eq_nodes.values():
        for a in branch_nodes:
            adjacency[a].extend(b for b in branch_nodes if b != a)
    depth: dict[str, int] = {}
    queue: collections.deque[str] = collections.deque()
    for source in model.of_type(EnergySource):
        for node in equipment_nodes(model, source):
            depth.setdefault(node, 0)
            queue.append(node)
    while queue:
        node = queue.popleft()
        for other in adjacency[node]:
            if other not in depth:
                depth[other] = depth[node] + 1
                queue.append(other)
    return min(nodes, key=lambda n: depth.get(n, 1 << 30))


def measurement_points(model: NetworkModel, mrid: str) -> list[Measurement]:
    """Measurements on an element: on one of its terminals or naming it as power system resource."""
    obj = model.objects.get(mrid)
    terminals = set(getattr(obj, "terminals", ()) or ())
    return [
        m
        for m in model.of_type(Measurement)
        if m.power_system_resource == mrid or (m.terminal is not None and m.terminal in terminals)
    ]
