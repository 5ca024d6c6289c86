"""Switching interlocks on the network model, checked for every switch command (``dms_veto_command``).

A command targets a switch through its ``SwitchPosition`` measurement's point (double point:
1 = open, 2 = close). Rules, each veto naming the rule and the elements:

* ``earthed-section``: no closing a switch that would join an earthed section (a node earthed by a
  closed :class:`~dms_kernel.model.GroundDisconnector`, and everything connected to it) to an
  energised one; no closing an earthing switch onto an energised node;
* ``disconnector-under-load``: no opening a :class:`~dms_kernel.model.Disconnector` carrying more
  than ``disconnector_max_current_a``: the current of a current measurement on the switch, else of
  the latest power-flow result (the series branch next to the switch), else estimated from the load
  the opening would disconnect;
* ``parallel-feeders``: no closing a switch whose two sides are fed from different substations
  (the Substation of the feeding transformer; its transformer when the model has no substations),
  unless the pair is allowed (``allow_parallel``);
* ``crew-on-site``: no opening a switch that would de-energise equipment named by a work order
  whose crew is on site, unless the crew released the section (a note on the order starting with
  "released").
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from dms_kernel.model import (
    Analog,
    ConductingEquipment,
    Disconnector,
    Discrete,
    EnergyConsumer,
    EnergySource,
    GroundDisconnector,
    PowerTransformer,
    Substation,
    Switch,
    Terminal,
    VoltageLevel,
)

__all__ = ["InterlockRules", "Interlocks", "CrewWork", "OPEN", "CLOSE"]

OPEN, CLOSE = 1, 2
_CURRENT_TYPES = {"LineCurrent", "Current", "PhaseCurrent", "A"}


@attrs.frozen
class CrewWork:
    """An order whose crew is on site: ``element`` is the equipment it names (mRID or name)."""

    order: int
    crew: str | None
    element: str
    released: bool = False


@attrs.frozen
class InterlockRules:
    disconnector_max_current_a: float = 1.0
    allow_parallel: frozenset[frozenset[str]] = frozenset()
    allow_all_parallel: bool = False

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any]) -> InterlockRules:
        pairs = []
        for pair in raw.get("allow_parallel", []):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise ValueError(f"[settings.protection] allow_parallel: expected pairs of substation names, got {pair!r}")
            pairs.append(frozenset(pair))
        return cls(float(raw.get("disconnector_max_current_a", 1.0)), frozenset(pairs), bool(raw.get("allow_all_parallel", False)))


class Interlocks:
    """The rules for one model.

    :param crew_work: returns the on-site work orders (default: none).
    :param branch_currents: returns the latest power-flow branch currents (element mRID -> A).
    """

    def __init__(self, model, rules: InterlockRules | None = None, *,  # noqa: ANN001
                 crew_work: Callable[[], Iterable[CrewWork]] | None = None,
                 branch_currents: Callable[[], Mapping[str, float]] | None = None) -> None:
        self.model = model
        self.rules = rules or InterlockRules()
        self.crew_work = crew_work or (lambda: ())
        self.branch_currents = branch_currents or (lambda: {})
        self._switch_of_point: dict[str, ConductingEquipment] = {}
        self._position_point: dict[str, str] = {}
        for measurement in model.of_type(Discrete):
            if measurement.measurement_type != "SwitchPosition":
                continue
            equipment = self._equipment_of(measurement)
            if isinstance(equipment, Switch | GroundDisconnector):
                self._switch_of_point[measurement.point_name] = equipment
                self._position_point[equipment.mrid] = measurement.point_name

    # -- model helpers -----------------------------------------------------------------------

    def _equipment_of(self, measurement) -> ConductingEquipment | None:  # noqa: ANN001
        model = self.model
        if measurement.power_system_resource and measurement.power_system_resource in model:
            found = model.get(measurement.power_system_resource)
            return found if isinstance(found, ConductingEquipment) else None
        if measurement.terminal and measurement.terminal in model:
            return model.objects.get(model.get(measurement.terminal, Terminal).conducting_equipment)
        return None

    def switch_for(self, point: str) -> ConductingEquipment | None:
        return self._switch_of_point.get(point)

    def _is_open(self, equipment, snapshot) -> bool:  # noqa: ANN001
        """Actual state: the position point in the snapshot when it is good, else the model."""
        point = self._position_point.get(equipment.mrid)
        if point is not None and snapshot is not None:
            try:
                measurement = snapshot.get(point)
            except KeyError:
                measurement = None
            if measurement is not None and measurement.quality.validity.name == "GOOD" and not math.isnan(measurement.value):
                if int(measurement.value) in (OPEN, CLOSE):
                    return int(measurement.value) == OPEN
        return bool(equipment.open)

    def _name(self, mrid: str) -> str:
        obj = self.model.objects.get(mrid)
        return f"{obj.name} ({mrid})" if obj is not None and obj.name and obj.name != mrid else mrid

    def _components(self, snapshot, overrides: Mapping[str, bool]) -> tuple[dict[str, int], set[int]]:  # noqa: ANN001
        """node -> component id, and the energised component ids, with switch states overridden."""
        model = self.model
        adjacency: dict[str, list[str]] = collections.defaultdict(list)
        for equipment in model.of_type(ConductingEquipment):
            if isinstance(equipment, GroundDisconnector) or not equipment.in_service:
                continue
            nodes = [model.node_of(t) for t in model.terminals(equipment) if t.connected]
            nodes = list(dict.fromkeys(n for n in nodes if n is not None))
            if len(nodes) < 2:
                continue
            if isinstance(equipment, Switch):
                is_open = overrides.get(equipment.mrid, self._is_open(equipment, snapshot))
                if is_open:
                    continue
            for a in nodes:
                for b in nodes:
                    if a != b:
                        adjacency[a].append(b)
        component: dict[str, int] = {}
        number = -1
        for start in model.node_ids():
            if start in component:
                continue
            number += 1
            component[start] = number
            queue = collections.deque([start])
            while queue:
                node = queue.popleft()
                for other in adjacency[node]:
                    if other not in component:
                        component[other] = number
                        queue.append(other)
        energised = set()
        for source in model.of_type(EnergySource):
            if source.in_service:
                for node in model.nodes_of(source):
                    if node in component:
                        energised.add(component[node])
        return component, energised

    def _earthed(self, snapshot, component: Mapping[str, int]) -> dict[int, list[str]]:  # noqa: ANN001
        earthed: dict[int, list[str]] = {}
        for earth in self.model.of_type(GroundDisconnector):
            if self._is_open(earth, snapshot):
                continue
            for node in self.model.nodes_of(earth):
                if node in component:
                    earthed.setdefault(component[node], []).append(earth.mrid)
        return earthed

    def _substation_of(self, node: str, topology) -> str | None:  # noqa: ANN001
        trace = topology.trace_upstream(node)
        model = self.model
        for mrid in trace.equipment:
            equipment = model.objects.get(mrid)
            if isinstance(equipment, PowerTransformer):
                container = model.objects.get(equipment.container) if equipment.container else None
                if isinstance(container, VoltageLevel) and container.substation:
                    container = model.objects.get(container.substation)
                if isinstance(container, Substation):
                    return container.name or container.mrid
                return equipment.name or equipment.mrid
        sources = [m for m in trace.equipment if isinstance(model.objects.get(m), EnergySource)]
        return sources[0] if sources else None

    # -- the check ----------------------------------------------------------------------------

    def check(self, target: str, value: float, snapshot=None) -> str | None:  # noqa: ANN001
        """The veto reason for commanding ``target`` (a switch-position point) to ``value``, or None."""
        equipment = self.switch_for(target)
        if equipment is None or value not in (OPEN, CLOSE):
            return None
        if self._is_open(equipment, snapshot) == (value == OPEN):
            return None  # already in the commanded position: nothing changes
        if isinstance(equipment, GroundDisconnector):
            return self._check_earthing(equipment, value, snapshot)
        reasons = []
        if value == CLOSE:
            reasons += filter(None, [self._check_earthed_section(equipment, snapshot), self._check_parallel(equipment, snapshot)])
        else:
            reasons += filter(None, [self._check_disconnector(equipment, snapshot), self._check_crew(equipment, snapshot)])
        return "; ".join(reasons) or None

    def _check_earthing(self, earth: GroundDisconnector, value: float, snapshot) -> str | None:  # noqa: ANN001
        if value != CLOSE:
            return None
        component, energised = self._components(snapshot, {})
        live = [n for n in self.model.nodes_of(earth) if n in component and component[n] in energised]
        if live:
            return f"rule earthed-section: closing earthing switch {self._name(earth.mrid)} onto energised node {self._name(live[0])}"
        return None

    def _check_earthed_section(self, switch: Switch, snapshot) -> str | None:  # noqa: ANN001
        component, energised = self._components(snapshot, {switch.mrid: True})
        earthed = self._earthed(snapshot, component)
        sides = [component[n] for n in self.model.nodes_of(switch) if n in component]
        if len(set(sides)) < 2:
            return None
        for side, other in ((sides[0], sides[1]), (sides[1], sides[0])):
            if side in earthed and other in energised:
                earths = ", ".join(self._name(e) for e in earthed[side])
                return (f"rule earthed-section: closing {self._name(switch.mrid)} would connect an energised section "
                        f"to a section earthed by {earths}")
        return None

    def _check_parallel(self, switch: Switch, snapshot) -> str | None:  # noqa: ANN001
        if self.rules.allow_all_parallel:
            return None
        component, energised = self._components(snapshot, {switch.mrid: True})
        nodes = [n for n in self.model.nodes_of(switch) if n in component]
        if len(nodes) < 2 or not all(component[n] in energised for n in nodes):
            return None
        from dms_kernel.model.topology import TopologyProcessor

        saved = switch.open
        switch.open = True  # trace each side as it is fed now (the kernel's topology may lag the snapshot)
        try:
            topology = TopologyProcessor(self.model)
            feeds = [self._substation_of(n, topology) for n in nodes]
        finally:
            switch.open = saved
        if None in feeds or feeds[0] == feeds[1]:
            return None
        if frozenset(feeds) in self.rules.allow_parallel:
            return None
        return (f"rule parallel-feeders: closing {self._name(switch.mrid)} would parallel feeders from different substations "
                f"{feeds[0]!r} and {feeds[1]!r} (not in allow_parallel)")

    def _measured_current_a(self, switch: Switch, snapshot) -> float | None:  # noqa: ANN001
        if snapshot is None:
            return None
        terminals = set(switch.terminals)
        for measurement in self.model.of_type(Analog):
            if measurement.measurement_type not in _CURRENT_TYPES:
                continue
            if measurement.power_system_resource != switch.mrid and measurement.terminal not in terminals:
                continue
            try:
                value = snapshot.get(measurement.point_name)
            except KeyError:
                continue
            if value.quality.validity.name == "GOOD" and not math.isnan(value.value):
                factor = 1000.0 if measurement.unit_multiplier == "k" else 1.0
                return abs(value.value) * factor
        return None

    def _flow_current_a(self, switch: Switch) -> float | None:
        currents = self.branch_currents()
        if not currents:
            return None
        model = self.model
        found = []
        for node in model.nodes_of(switch):
            others = [eq for eq, _ in model.equipment_at(node) if eq != switch.mrid and len(model.nodes_of(eq)) >= 2]
            if len(others) == 1 and others[0] in currents:
                found.append(currents[others[0]])
        return max(found) if found else None

    def _check_disconnector(self, switch: Switch, snapshot) -> str | None:  # noqa: ANN001
        if not isinstance(switch, Disconnector):
            return None
        current, where = self._measured_current_a(switch, snapshot), "measured"
        if current is None:
            current, where = self._flow_current_a(switch), "power flow"
        if current is None:
            current, where = self._estimated_current_a(switch, snapshot), "estimated from the load it would disconnect"
        limit = self.rules.disconnector_max_current_a
        if current is not None and current > limit:
            return (f"rule disconnector-under-load: disconnector {self._name(switch.mrid)} carries {current:.1f} A "
                    f"({where}), above {limit:g} A (disconnector_max_current_a); open the breaker first")
        return None

    def _deenergised_by_opening(self, switch: Switch, snapshot) -> set[str]:  # noqa: ANN001
        before, live_before = self._components(snapshot, {})
        after, live_after = self._components(snapshot, {switch.mrid: True})
        return {n for n in before if before[n] in live_before and after[n] not in live_after}

    def _estimated_current_a(self, switch: Switch, snapshot) -> float | None:  # noqa: ANN001
        lost = self._deenergised_by_opening(switch, snapshot)
        if not lost:
            return None
        s_mva = 0.0
        for load in self.model.of_type(EnergyConsumer):
            if load.in_service and any(n in lost for n in self.model.nodes_of(load)):
                s_mva += math.hypot(load.p_mw, load.q_mvar)
        kv = self._kv(switch)
        if not kv:
            return None
        return s_mva / (math.sqrt(3) * kv) * 1000.0

    def _kv(self, equipment: ConductingEquipment) -> float | None:
        model = self.model
        kv = model.nominal_kv(equipment)
        for node in model.nodes_of(equipment):
            if kv:
                break
            obj = model.objects.get(node) if node else None
            container = model.objects.get(obj.container) if obj is not None and getattr(obj, "container", None) else None
            kv = model.nominal_kv(container) if container is not None else None
        return kv

    def _equipment_nodes(self, element: str) -> list[str]:
        model = self.model
        obj = model.objects.get(element)
        if obj is None:
            try:
                obj = model.by_name(element, ConductingEquipment)
            except Exception:  # noqa: BLE001 - unknown element names are no match
                return []
        if isinstance(obj, ConductingEquipment):
            return [n for n in model.nodes_of(obj) if n is not None]
        return [element] if element in model.node_ids() else []

    def _check_crew(self, switch: Switch, snapshot) -> str | None:  # noqa: ANN001
        work = [w for w in self.crew_work() if not w.released]
        if not work:
            return None
        lost = self._deenergised_by_opening(switch, snapshot)
        for item in work:
            nodes = self._equipment_nodes(item.element)
            if nodes and all(n in lost for n in nodes):
                return (f"rule crew-on-site: opening {self._name(switch.mrid)} would de-energise {self._name(item.element)} "
                        f"where crew {item.crew or '?'} is on site (work order {item.order}); the crew has not released the section")
        return None
