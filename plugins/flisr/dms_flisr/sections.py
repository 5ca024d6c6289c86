"""The network as switchable sections: what FLISR isolates and restores.

A *section* is a set of nodes connected without switches (lines, transformers, busbars): the
smallest part of the grid that switching can separate. Switches join sections. With a switch
state (open/closed per switch) the sections fed from a source are energised — a breadth-first
search over closed switches from the sections that hold an ``EnergySource``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import attrs

from dms_kernel.model import (
    Breaker,
    ConductingEquipment,
    EnergyConsumer,
    EnergySource,
    Fuse,
    NetworkModel,
    Recloser,
    Switch,
)

__all__ = ["SectionGraph", "SwitchEdge", "PROTECTIVE"]

PROTECTIVE = (Breaker, Recloser, Fuse)


@attrs.frozen
class SwitchEdge:
    mrid: str
    name: str
    a: int  #: section at terminal 1
    b: int  #: section at terminal 2
    normal_open: bool
    protective: bool
    kind: str


class SectionGraph:
    """Sections of ``model`` and the switches between them (built once per model structure)."""

    def __init__(self, model: NetworkModel) -> None:
        self.model = model
        parent: dict[str, str] = {n: n for n in model.node_ids()}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        switches = model.of_type(Switch)
        switch_ids = {s.mrid for s in switches}
        for equipment in model.of_type(ConductingEquipment):
            if equipment.mrid in switch_ids:
                continue
            nodes = [n for n in model.nodes_of(equipment) if n is not None]
            for other in nodes[1:]:
                ra, rb = find(nodes[0]), find(other)
                if ra != rb:
                    parent[ra] = rb
        roots: dict[str, int] = {}
        self.section_of: dict[str, int] = {}
        for node in model.node_ids():
            self.section_of[node] = roots.setdefault(find(node), len(roots))
        self.count = len(roots)
        self.nodes: list[list[str]] = [[] for _ in range(self.count)]
        for node, section in self.section_of.items():
            self.nodes[section].append(node)
        self.switches: dict[str, SwitchEdge] = {}
        self.adjacent: list[list[str]] = [[] for _ in range(self.count)]
        for switch in switches:
            ends = [n for n in model.nodes_of(switch) if n is not None]
            if len(ends) != 2:
                continue
            a, b = self.section_of[ends[0]], self.section_of[ends[1]]
            edge = SwitchEdge(switch.mrid, switch.name or switch.mrid, a, b, switch.normal_open, isinstance(switch, PROTECTIVE),
                              type(switch).__name__)
            self.switches[switch.mrid] = edge
            self.adjacent[a].append(switch.mrid)
            self.adjacent[b].append(switch.mrid)
        self.source_sections = sorted({self.section_of[n] for s in model.of_type(EnergySource) for n in model.nodes_of(s) if n})
        self.consumers: list[list[EnergyConsumer]] = [[] for _ in range(self.count)]
        for load in model.of_type(EnergyConsumer):
            node = (model.nodes_of(load) or [None])[0]
            if node is not None:
                self.consumers[self.section_of[node]].append(load)

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, bool]:
        """Switch mRID -> open, from the model's actual states."""
        return {mrid: bool(self.model.objects[mrid].open) for mrid in self.switches}

    def energised(self, state: Mapping[str, bool]) -> set[int]:
        """Sections fed from a source with ``state`` (switch -> open)."""
        seen = set(self.source_sections)
        queue = deque(self.source_sections)
        while queue:
            section = queue.popleft()
            for mrid in self.adjacent[section]:
                if state.get(mrid, False):
                    continue
                edge = self.switches[mrid]
                other = edge.b if edge.a == section else edge.a
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
        return seen

    def component(self, start: int, state: Mapping[str, bool], within: set[int] | None = None, blocked: Iterable[str] = ()) -> set[int]:
        """Sections connected to ``start`` over closed switches (optionally only inside ``within``)."""
        blocked = set(blocked)
        seen = {start}
        queue = deque([start])
        while queue:
            section = queue.popleft()
            for mrid in self.adjacent[section]:
                if state.get(mrid, False) or mrid in blocked:
                    continue
                edge = self.switches[mrid]
                other = edge.b if edge.a == section else edge.a
                if other not in seen and (within is None or other in within):
                    seen.add(other)
                    queue.append(other)
        return seen

    def other_side(self, mrid: str, section: int) -> int:
        edge = self.switches[mrid]
        return edge.b if edge.a == section else edge.a

    # -- load ----------------------------------------------------------------------------------

    def load_mw(self, sections: Iterable[int]) -> float:
        return float(sum(c.p_mw for s in sections for c in self.consumers[s] if c.in_service))

    def customers(self, sections: Iterable[int]) -> int:
        return int(sum(max(c.customer_count, 1) for s in sections for c in self.consumers[s]))

    def describe(self, section: int) -> str:
        names = sorted((self.model.objects[n].name or n) for n in self.nodes[section])
        return ", ".join(names[:4]) + (f" … ({len(names)} nodes)" if len(names) > 4 else "")
