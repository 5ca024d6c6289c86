"""Fault location: which section of the tripped feeder holds the fault.

Evidence, in order of strength:

1. **Fault passage indicators** (a ``Discrete`` measurement of type ``FaultPassageIndicator``
   on a switch, 1 = fault current passed): starting below the tripped device, follow closed
   switches whose indicator picked up; the fault lies in the last section reached — beyond it
   no indicator saw fault current.
2. **Fault current** measured by the tripping relay: every candidate section is ranked by how
   well the short-circuit current at its nodes (IEC 60909, pandapower ``calc_sc``, maximum
   three-phase) matches the measured current (the fault current falls with the distance from
   the source).
3. Otherwise every section below the tripped device is a candidate, the nearest first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from .sections import SectionGraph

__all__ = ["Candidate", "locate", "downstream_area", "short_circuit_ka", "fault_path"]


@attrs.frozen
class Candidate:
    section: int
    score: float  #: higher is more likely (1.0: indicated by FPIs)
    reason: str


def downstream_area(graph: SectionGraph, tripped: str, state: Mapping[str, bool]) -> tuple[int, set[int]]:
    """``(first section below the tripped device, every section it fed)`` for the state after the trip."""
    edge = graph.switches[tripped]
    energised = graph.energised(state)
    if edge.a in energised and edge.b not in energised:
        below = edge.b
    elif edge.b in energised and edge.a not in energised:
        below = edge.a
    else:  # both sides dead (upstream also tripped) or both live (a loop): the side away from the source
        below = edge.b if graph.source_sections and edge.a in graph.component(graph.source_sections[0], {**state, tripped: True}) else edge.a
    return below, graph.component(below, state, blocked=[tripped])


def fault_path(graph: SectionGraph, tripped: str, faulted: int, state: Mapping[str, bool]) -> list[str]:
    """The closed switches between the tripped device and the faulted section: those whose fault
    passage indicators see the fault current (for simulations and tests)."""
    below, area = downstream_area(graph, tripped, state)
    parent: dict[int, tuple[str, int] | None] = {below: None}
    queue = [below]
    while queue:
        section = queue.pop(0)
        for mrid in graph.adjacent[section]:
            other = graph.other_side(mrid, section)
            if mrid != tripped and not state.get(mrid, False) and other in area and other not in parent:
                parent[other] = (mrid, section)
                queue.append(other)
    path, section = [], faulted
    while parent.get(section):
        mrid, section = parent[section]  # type: ignore[misc]
        path.append(mrid)
    return path


def locate(graph: SectionGraph, tripped: str, state: Mapping[str, bool], fpi: Mapping[str, bool] | None = None,
           fault_current_ka: float | None = None, section_ka: Mapping[int, float] | None = None) -> list[Candidate]:
    """Ranked candidate sections for a fault that tripped ``tripped`` (see the module docstring)."""
    below, area = downstream_area(graph, tripped, state)
    fpi = dict(fpi or {})
    known = [m for m in fpi if m in graph.switches and graph.switches[m].a in area | {below} and not state.get(m, False)]
    if known:
        section, seen = below, {below}
        path = []
        while True:
            nxt = [m for m in graph.adjacent[section] if m != tripped and not state.get(m, False) and fpi.get(m)
                   and graph.other_side(m, section) not in seen]
            if not nxt:
                break
            path.append(nxt[0])
            section = graph.other_side(nxt[0], section)
            seen.add(section)
        via = " → ".join(graph.switches[m].name for m in path) or "no indicator below the tripped device"
        candidates = [Candidate(section, 1.0, f"fault passage indicators: {via}")]
        if fault_current_ka is None or not section_ka:
            return candidates
        return candidates + [c for c in _by_current(area, fault_current_ka, section_ka) if c.section != section]
    if fault_current_ka is not None and section_ka:
        return _by_current(area, fault_current_ka, section_ka)
    order = graph.component(below, state, within=area, blocked=[tripped])
    return [Candidate(s, 0.5 / (1 + k), "no indicators or fault current: below the tripped device") for k, s in enumerate(order)]


def _by_current(area: set[int], measured_ka: float, section_ka: Mapping[int, float]) -> list[Candidate]:
    scored = []
    for section in area:
        ka = section_ka.get(section)
        if ka is None or ka <= 0 or measured_ka <= 0:
            continue
        mismatch = abs(math.log(ka / measured_ka))
        scored.append(Candidate(section, math.exp(-5.0 * mismatch), f"short-circuit current {ka:.2f} kA vs measured {measured_ka:.2f} kA"))
    return sorted(scored, key=lambda c: -c.score)


def short_circuit_ka(graph: SectionGraph) -> dict[int, float]:
    """Per section: the largest initial symmetrical three-phase short-circuit current (kA,
    IEC 60909 maximum) at its nodes, with the model's present switch states (pandapower)."""
    import warnings

    import pandapower.shortcircuit as sc
    from dms_pandapower.convert import to_pandapower

    network = to_pandapower(graph.model)
    net = network.net
    if "s_sc_max_mva" not in net.ext_grid or net.ext_grid.s_sc_max_mva.isna().any():
        net.ext_grid["s_sc_max_mva"] = net.ext_grid.get("s_sc_max_mva", 1000.0)
        net.ext_grid["s_sc_max_mva"] = net.ext_grid["s_sc_max_mva"].fillna(1000.0)
        net.ext_grid["rx_max"] = net.ext_grid.get("rx_max", 0.1)
        net.ext_grid["rx_max"] = net.ext_grid["rx_max"].fillna(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.calc_sc(net, case="max", ip=False, ith=False)
    out: dict[int, float] = {}
    for node, bus in network.bus_of.items():
        section = graph.section_of.get(node)
        value = float(net.res_bus_sc.at[bus, "ikss_ka"]) if bus in net.res_bus_sc.index else math.nan
        if section is not None and math.isfinite(value):
            out[section] = max(out.get(section, 0.0), value)
    return out
