"""Test cases: an example network with a DSO-like measurement set, its true state from the
simulator's GridTwin, and noisy point values at the stated accuracies."""

from __future__ import annotations

import math

import numpy as np
from dms_pandapower.examples import load_example
from dms_se.measurements import DEFAULT_FLOOR, DEFAULT_STD
from dms_simulator.grid import GridTwin

from dms_kernel.model import ACLineSegment, Analog, EnergyConsumer, PowerTransformer
from dms_kernel.model.scada import add_scada_measurements


def equip(model, voltage_every: int = 3, currents: bool = True):
    """Standard SCADA measurements + smart meters (load P) + voltage at every ``voltage_every``-th
    load node (secondary substation RTUs) + current magnitude at the lines leaving MV/LV busbars."""
    add_scada_measurements(model, meters=True)
    loads = sorted(model.of_type(EnergyConsumer), key=lambda c: c.mrid)
    seen = set()
    for k, load in enumerate(loads):
        node = model.nodes_of(load)[0]
        if k % voltage_every or node in seen:
            continue
        seen.add(node)
        model.add(Analog(f"{load.mrid}_M_U", name=f"{load.name}/U", terminal=load.terminals[0], power_system_resource=load.mrid,
                         measurement_type="LineToLineVoltage", unit="V", unit_multiplier="k", point=f"{(load.name or load.mrid).replace(' ', '_')}/U"))
    if currents:
        lv_nodes = set()
        for t in model.of_type(PowerTransformer):
            lv_nodes.update(n for n in model.nodes_of(t)[1:] if n)
        for line in model.of_type(ACLineSegment):
            if model.nodes_of(line)[0] in lv_nodes:
                label = (line.name or line.mrid).replace(" ", "_")
                model.add(Analog(f"{line.mrid}_M_I", name=f"{label}/I", terminal=line.terminals[0], power_system_resource=line.mrid,
                                 measurement_type="LineCurrent", unit="A", point=f"{label}/I"))
    return model


def case(name: str, **kwargs):
    """(kernel-side model with the extra measurements, twin with the standard ones + meters)."""
    return equip(load_example(name), **kwargs), GridTwin(load_example(name), seed=1, start_hour=12.0)


def true_values(model, twin: GridTwin) -> dict[str, float]:
    """Point -> exact value (point units) of every analog of ``model``, from the twin's power flow."""
    net = twin.network.net
    served = {p.id.name for p in twin.points()}
    out = {}
    for m in model.of_type(Analog):
        name = m.point_name
        if name in served:
            value = twin.read(name)[0]
        elif m.measurement_type == "LineToLineVoltage":
            bus = twin.network.bus_of[model.node_of(model.get(m.terminal))]
            value = float(net.res_bus.at[bus, "vm_pu"] * net.bus.at[bus, "vn_kv"])
        elif m.measurement_type == "LineCurrent":
            _, index = twin.network.element_index[m.power_system_resource]
            value = float(net.res_line.at[index, "i_from_ka"]) * 1e3
        else:
            continue
        if not math.isnan(value):
            out[name] = value
    return out


def true_voltages(twin: GridTwin) -> dict[str, float]:
    net = twin.network.net
    return {node: float(net.res_bus.at[bus, "vm_pu"]) for node, bus in twin.network.bus_of.items()}


def sigma_of(point: str, value: float, model) -> float:
    m = next(x for x in model.of_type(Analog) if x.point_name == point)
    if "Voltage" in m.measurement_type:
        return max(DEFAULT_STD["voltage"] * abs(value), DEFAULT_FLOOR["voltage"] * abs(value))
    if m.measurement_type == "LineCurrent":
        return max(DEFAULT_STD["current"] * abs(value), DEFAULT_FLOOR["current"] * 1e3)
    return max(DEFAULT_STD["power"] * abs(value), DEFAULT_FLOOR["power"])


def noisy(truth: dict[str, float], model, rng: np.random.Generator) -> dict[str, float]:
    return {p: v + sigma_of(p, v, model) * float(rng.standard_normal()) for p, v in truth.items()}
