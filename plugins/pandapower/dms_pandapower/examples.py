"""Example networks by name: ``cigre_mv``, ``mv_oberrhein``, ``ieee_european_lv``, ``radial_<N>``.

:func:`load_example` returns a fresh :class:`~dms_kernel.model.NetworkModel` on every call;
:func:`pandapower_example` the pandapower net it is made from (a deep copy: tests may change it).
"""

from __future__ import annotations

import copy
import functools
import math
import re
import warnings

import pandapower as pp
import pandapower.networks as pn

from dms_kernel.model import Feeder, NetworkModel, Substation

from .convert import from_pandapower

__all__ = ["EXAMPLES", "is_example", "load_example", "pandapower_example", "radial_feeder"]

EXAMPLES = ("cigre_mv", "mv_oberrhein", "ieee_european_lv", "radial_<N>")
_RADIAL = re.compile(r"^radial_(\d+)$")

# NA2XS2Y 1x240 RM/25 12/20 kV (pandapower standard type): trunk cable
_TRUNK = {"r_ohm_per_km": 0.122, "x_ohm_per_km": 0.112, "c_nf_per_km": 304.0, "max_i_ka": 0.421}
# NA2XS2Y 1x150 RM/25 12/20 kV: branch cable
_BRANCH = {"r_ohm_per_km": 0.206, "x_ohm_per_km": 0.116, "c_nf_per_km": 250.0, "max_i_ka": 0.319}
FEEDER_BUSES = 30  # feeder bay + 14 trunk buses + 15 branch buses
FEEDERS_PER_TRANSFORMER = 6


def is_example(name: str) -> bool:
    return name in ("cigre_mv", "mv_oberrhein", "ieee_european_lv") or bool(_RADIAL.match(name))


def radial_feeder(buses: int) -> pp.pandapowerNet:
    """A deterministic synthetic 110/20 kV network of exactly ``buses`` buses, radial.

    One 110 kV infeed; per 6 feeders a 40 MVA 110/20 kV transformer (Dyn5) with on-load tap changer
    and a 20 kV busbar; each feeder: a breaker to the feeder bay, a trunk of NA2XS2Y 1x240 cable
    (0.4–0.6 km sections) with one NA2XS2Y 1x150 branch (0.3–0.5 km) per trunk bus, and an MV/LV
    station load of 0.1–0.3 MW (cos φ 0.95) on every trunk and branch bus (30 buses per feeder).
    """
    if buses < 4:
        raise ValueError(f"radial_{buses}: a radial network needs at least 4 buses")
    names: list[str] = ["HV"]
    kv: list[float] = [110.0]
    trafos: list[int] = []  # MV busbars
    switches: list[tuple[int, int, str]] = []
    lines: dict[str, list] = {k: [] for k in ("from_buses", "to_buses", "length_km", "name", "std")}
    loads: dict[str, list] = {k: [] for k in ("buses", "p_mw", "q_mvar", "name")}

    def bus(name: str, voltage: float = 20.0) -> int:
        names.append(name)
        kv.append(voltage)
        return len(names) - 1

    def line(a: int, b: int, length: float, name: str, std: dict) -> None:
        lines["from_buses"].append(a)
        lines["to_buses"].append(b)
        lines["length_km"].append(length)
        lines["name"].append(name)
        lines["std"].append(std)
        _load(loads, b, len(lines["name"]) - 1, f"{names[b]} load")

    feeders_on_busbar = FEEDERS_PER_TRANSFORMER
    busbar = 0
    while len(names) < buses:
        if feeders_on_busbar == FEEDERS_PER_TRANSFORMER:
            busbar = bus(f"S{len(trafos)} MV busbar")
            trafos.append(busbar)
            feeders_on_busbar = 0
            continue
        size = min(FEEDER_BUSES, buses - len(names))
        feeder = len(switches)
        bay = bus(f"F{feeder} bay")
        switches.append((busbar, bay, f"F{feeder} CB"))
        previous, created, position = bay, 1, 0
        while created < size:
            trunk = bus(f"F{feeder} T{position}")
            created += 1
            line(previous, trunk, 0.4 + 0.05 * (len(lines["name"]) % 5), f"F{feeder} L{position}", _TRUNK)
            previous = trunk
            if created < size:
                branch = bus(f"F{feeder} B{position}")
                created += 1
                line(trunk, branch, 0.3 + 0.1 * (len(lines["name"]) % 3), f"F{feeder} LB{position}", _BRANCH)
            position += 1
        feeders_on_busbar += 1
    net = pp.create_empty_network(name=f"radial_{buses}", f_hz=50.0)
    pp.create_buses(net, len(names), kv, name=names)
    pp.create_ext_grid(
        net, 0, vm_pu=1.02, name="Grid", s_sc_max_mva=5000.0, s_sc_min_mva=5000.0, rx_max=0.1, rx_min=0.1
    )
    if trafos:
        n = len(trafos)
        pp.create_transformers_from_parameters(
            net,
            [0] * n,
            trafos,
            sn_mva=40.0,
            vn_hv_kv=110.0,
            vn_lv_kv=20.0,
            vkr_percent=0.3,
            vk_percent=12.0,
            pfe_kw=30.0,
            i0_percent=0.06,
            shift_degree=150.0,
            tap_side="hv",
            tap_neutral=0,
            tap_min=-9,
            tap_max=9,
            tap_step_percent=1.5,
            tap_pos=-2,
            tap_changer_type="Ratio",
            name=[f"S{k} T1" for k in range(n)],
        )
    if switches:
        pp.create_switches(
            net,
            [s[0] for s in switches],
            [s[1] for s in switches],
            "b",
            closed=True,
            type="CB",
            name=[s[2] for s in switches],
        )
    if lines["name"]:
        std = lines.pop("std")
        pp.create_lines_from_parameters(net, **lines, **{key: [s[key] for s in std] for key in _TRUNK}, type="cs")
    if loads["buses"]:
        pp.create_loads(net, **loads)
    assert len(net.bus) == buses, (len(net.bus), buses)
    return net


def _load(rows: dict[str, list], bus: int, k: int, name: str) -> None:
    p = 0.1 + 0.02 * ((k * 7) % 11)
    rows["buses"].append(bus)
    rows["p_mw"].append(p)
    rows["q_mvar"].append(p * math.tan(math.acos(0.95)))
    rows["name"].append(name)


@functools.lru_cache(maxsize=8)
def _cached(name: str) -> pp.pandapowerNet:
    with warnings.catch_warnings():
        # pandapower's stored example nets run a power flow on load and warn about their old format
        warnings.simplefilter("ignore", DeprecationWarning)
        net = _build(name)
    for table in ("trafo", "trafo3w"):
        # older stored nets (mv_oberrhein, ieee_european_lv) predate pandapower 3's column
        if len(net[table]) and "tap_dependency_table" not in net[table].columns:
            net[table]["tap_dependency_table"] = False
    return net


def _build(name: str) -> pp.pandapowerNet:
    if name == "cigre_mv":
        return pn.create_cigre_network_mv(with_der="pv_wind")
    if name == "mv_oberrhein":
        return pn.mv_oberrhein()
    if name == "ieee_european_lv":
        net = pn.ieee_european_lv_asymmetric()
        # runpp_3ph stops at a fixed mismatch of 3e-8 pu of sn_mva: with the file's 100 MVA base that is 3 W,
        # too loose for 1e-6 pu agreement on an LV network; 1 MVA (pandapower's default) gives ~1e-11 pu
        net.sn_mva = 1.0
        return net
    match = _RADIAL.match(name)
    if match:
        return radial_feeder(int(match.group(1)))
    raise KeyError(f"unknown example network {name!r} (known: {', '.join(EXAMPLES)})")


def pandapower_example(name: str) -> pp.pandapowerNet:
    """The pandapower net of an example (a deep copy). :raises KeyError: unknown name."""
    return copy.deepcopy(_cached(name))


def load_example(name: str) -> NetworkModel:
    """A fresh network model of an example network. :raises KeyError: unknown name.

    ``radial_<N>`` models also have a Substation per transformer and a Feeder per feeder breaker
    (head terminal: the breaker's feeder-side terminal; lines and loads have the feeder as container).
    """
    net = pandapower_example(name)
    model = from_pandapower(net, name)
    if _RADIAL.match(name):
        _add_containers(net, model)
    return model


def _add_containers(net: pp.pandapowerNet, model: NetworkModel) -> None:
    substation_of_busbar: dict[int, str] = {}
    for k, row in net.trafo.iterrows():
        substation = model.add(Substation(f"substation_{k}", name=str(row["name"]).split()[0]))
        substation_of_busbar[int(row.lv_bus)] = substation.mrid
        model.get(f"trafo_{k}").container = substation.mrid
    children: dict[int, list[tuple[int, int]]] = {}
    for k, row in net.line.iterrows():
        children.setdefault(int(row.from_bus), []).append((int(k), int(row.to_bus)))
    loads_at: dict[int, list[int]] = {}
    for k, bus in net.load.bus.items():
        loads_at.setdefault(int(bus), []).append(int(k))
    for s, row in net.switch.iterrows():
        breaker = model.get(f"switch_{s}")
        feeder = model.add(
            Feeder(
                f"feeder_{s}",
                name=str(row["name"]).removesuffix(" CB"),
                normal_head_terminal=breaker.terminals[1],
                substation=substation_of_busbar.get(int(row.bus)),
            )
        )
        breaker.container = feeder.substation
        stack = [int(row.element)]
        while stack:
            bus = stack.pop()
            for load in loads_at.get(bus, ()):
                model.get(f"load_{load}").container = feeder.mrid
            for line, child in children.get(bus, ()):
                model.get(f"line_{line}").container = feeder.mrid
                stack.append(child)
