"""Feeder sets with sectionalising switches and ties, for FLISR tests and benchmarks.

``looped_feeders(feeders, sections)``: a 110 kV infeed, one 40 MVA 110/20 kV transformer per
four feeders; each feeder a breaker and ``sections`` sections of 0.6 km NA2XS2Y 1x240 cable
with a load at the end of each (``load_mw``, cos φ 0.95), separated by load-break switches;
between neighbouring feeders two normally-open ties (at the ends and in the middle). Switch
count: ``feeders * sections + 2 * (feeders - 1)``.
"""

from __future__ import annotations

import pandapower as pp
from dms_pandapower.convert import from_pandapower

from dms_kernel.model import Discrete, NetworkModel, Switch

__all__ = ["looped_feeders", "add_fault_indicators"]


def looped_feeders(feeders: int = 4, sections: int = 6, load_mw: float = 0.6) -> NetworkModel:
    net = pp.create_empty_network(name=f"looped_{feeders}x{sections}", f_hz=50.0)
    hv = pp.create_bus(net, 110.0, name="HV")
    pp.create_ext_grid(net, hv, vm_pu=1.02, name="Grid", s_sc_max_mva=3000.0, s_sc_min_mva=2000.0, rx_max=0.1, rx_min=0.1)
    ends: list[list[int]] = []
    busbar = None
    for f in range(feeders):
        if f % 4 == 0:
            busbar = pp.create_bus(net, 20.0, name=f"S{f // 4} busbar")
            pp.create_transformer(net, hv, busbar, "40 MVA 110/20 kV", name=f"S{f // 4} T1")
        bay = pp.create_bus(net, 20.0, name=f"F{f} bay")
        pp.create_switch(net, busbar, bay, et="b", type="CB", name=f"F{f} CB")
        previous = bay
        nodes = []
        for k in range(sections):
            start = previous
            if k > 0:
                start = pp.create_bus(net, 20.0, name=f"F{f} S{k} start")
                pp.create_switch(net, previous, start, et="b", type="LBS", name=f"F{f} SW{k}")
            end = pp.create_bus(net, 20.0, name=f"F{f} S{k}")
            pp.create_line(net, start, end, 0.6, "NA2XS2Y 1x240 RM/25 12/20 kV", name=f"F{f} L{k}")
            pp.create_load(net, end, p_mw=load_mw, q_mvar=load_mw * 0.329, name=f"F{f} load {k}")
            nodes.append(end)
            previous = end
        ends.append(nodes)
    for f in range(feeders - 1):
        a, b = ends[f], ends[f + 1]
        for k, label in ((len(a) - 1, "end"), (len(a) // 2, "mid")):
            pp.create_switch(net, a[k], b[k], et="b", type="LBS", closed=False, name=f"T{f}-{f + 1} {label}")
    model = from_pandapower(net, name=net.name)
    for switch in model.of_type(Switch):
        switch.normal_open = switch.open
    return model


def add_fault_indicators(model: NetworkModel) -> list[Discrete]:
    """A fault passage indicator (``Discrete``, type ``FaultPassageIndicator``, point
    ``<switch>/FPI``) at every switch."""
    added = []
    for switch in model.of_type(Switch):
        label = (switch.name or switch.mrid).replace(" ", "_")
        terminal = model.terminals(switch)[0].mrid if model.terminals(switch) else None
        added.append(model.add(Discrete(f"{switch.mrid}_FPI", name=f"{switch.name} FPI", terminal=terminal,
                                        power_system_resource=switch.mrid, measurement_type="FaultPassageIndicator",
                                        point=f"{label}/FPI")))
    return added
