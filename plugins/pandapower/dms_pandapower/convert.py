"""Converters between the Leitstand network model (CIM) and pandapower.

:func:`to_pandapower` builds a pandapower net once; :meth:`PandapowerNetwork.update` copies the
run-time values (loads, generation, switch states, tap steps, shunt sections, source voltage,
in-service flags) from the model into that net in place, with vectorised column assignments, so
a cyclic power flow never rebuilds the net.

:func:`from_pandapower` turns a pandapower net (the example networks) into a model, so that
``to_pandapower(from_pandapower(net))`` solves to the same voltages as ``net``.

Conventions of the mapping (both directions):

* ConnectivityNode (or TopologicalNode) -> bus; ``vn_kv`` from the node's VoltageLevel /
  TopologicalNode BaseVoltage, else from connected equipment, else propagated over lines and
  switches.
* ACLineSegment -> line; ``b`` in µS <-> ``c`` in nF with ``2*pi*f``; per-phase impedance
  matrices become sequence impedances (symmetrical components, Kron reduction of a neutral). A
  line without zero-sequence data gets the positive-sequence values in unbalanced mode (as in
  power-grid-model).
* PowerTransformer: all series impedance referred to end 1 (``vk``/``vkr`` on ``rated_s_mva`` of
  end 1), magnetising admittance ``g``/``b`` on end 1 (``pfe_kw``/``i0_percent``, the sign of
  ``b`` ignored); end 2's ``phase_angle_clock`` * 30° is ``shift_degree``. The zero-sequence
  magnetising impedance runpp_3ph needs (CIM does not carry it) is the positive-sequence one,
  as in power-grid-model: ``mag0_percent``/``mag0_rx`` from ``i0_percent``/``pfe_kw`` (no
  magnetising current: an open circuit, ``mag0_percent`` = 1e12); ``si0_hv_partial=0.9``
  (pandapower's default). pandapower's own default ``mag0_percent=100`` would nearly halve the
  zero-sequence impedance of a Dyn or YNyn transformer (see README.md).
* Unbalanced mode (runpp_3ph): static generators (PV, synchronous machines) and batteries are
  ``sgen`` rows of type ``"wye"`` (runpp_3ph ignores every other sgen type and the ``storage``
  table); the EnergySource is an ideal source in all three sequences (``s_sc_max_mva`` =
  :data:`STIFF_S_SC_MVA`), as power-grid-model's default source and pandapower's balanced
  ``ext_grid``, unless ``source_impedance=True``.
* Line/transformer switches of pandapower become bus-bus switches with a ConnectivityNode between
  switch and element (the model is node-breaker).
* pandapower ``scaling`` factors are multiplied into the model's p/q.
"""

from __future__ import annotations

import json
import math
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandapower as pp
import pandas as pd

from dms_kernel.model import (
    ACLineSegment,
    BaseVoltage,
    BatteryUnit,
    Breaker,
    ConductingEquipment,
    ConnectivityNode,
    Disconnector,
    EnergyConsumer,
    EnergyConsumerPhase,
    EnergySource,
    Fuse,
    LinearShuntCompensator,
    LoadBreakSwitch,
    LoadResponseCharacteristic,
    Location,
    NetworkModel,
    PerLengthPhaseImpedance,
    PerLengthSequenceImpedance,
    PhotoVoltaicUnit,
    PowerElectronicsConnection,
    PowerTransformer,
    PowerTransformerEnd,
    RatioTapChanger,
    Recloser,
    Sectionaliser,
    Switch,
    SynchronousMachine,
    Terminal,
    TopologicalNode,
    TransformerTank,
    VoltageLevel,
)

__all__ = [
    "ConversionError",
    "PandapowerNetwork",
    "common_3ph_model",
    "from_pandapower",
    "switch_type",
    "to_pandapower",
]

# zero-sequence magnetising data CIM does not carry: the magnetising impedance is the positive-sequence
# one (from i0/pfe, as power-grid-model); without magnetising current it is an open circuit (a huge
# ratio: pandapower's T-model formulas need a finite value); HV share of the leakage: pandapower's default
MAG0_OPEN_PERCENT = 1.0e12
MAG0_RX_RESISTIVE = 1.0e12
SI0_HV_PARTIAL = 0.9
#: short-circuit power (MVA) of the ideal source of runpp_3ph (negative and zero sequence; the positive
#: sequence is an ideal slack anyway): 1e10 MVA leaves < 1e-8 pu from an ideal source
STIFF_S_SC_MVA = 1.0e10


class ConversionError(ValueError):
    """The model (or net) contains something this converter cannot represent."""


def _label(obj: Any) -> str:
    return f"{type(obj).__name__} {obj.mrid!r} ({obj.name!r})"


def switch_type(switch: Switch) -> str:
    """pandapower switch type of a CIM switch class: ``CB``, ``LBS`` or ``DS``."""
    if isinstance(switch, Breaker | Recloser):
        return "CB"
    if isinstance(switch, Disconnector):
        return "DS"
    if isinstance(switch, LoadBreakSwitch | Sectionaliser | Fuse):
        return "LBS"
    return "CB"


def _abc(phases: str) -> str:
    """The phase conductors A/B/C of a CIM phase code, in order (``"ABCN"`` -> ``"ABC"``)."""
    if "s1" in phases or "s2" in phases:
        return "s"
    return "".join(p for p in "ABC" if p in phases)


# ---------------------------------------------------------------------------------------
# model -> pandapower
# ---------------------------------------------------------------------------------------


class PandapowerNetwork:
    """A pandapower net built from a model, with the mRID <-> index mappings.

    :ivar net: the pandapower net.
    :ivar unbalanced: built for ``runpp_3ph`` (asymmetric loads, zero-sequence data).
    :ivar bus_of: node mRID -> bus index.
    :ivar element_index: equipment mRID -> ``(table, index)``.
    :ivar nodes: node mRIDs in bus order; ``node_names`` their result names (lower case).
    :ivar branches: ``(mRID, name, CIM class, table, index)`` of lines and transformers.
    """

    def __init__(self, unbalanced: bool) -> None:
        self.net = pp.create_empty_network(f_hz=50.0)
        self.unbalanced = unbalanced
        self.bus_of: dict[str, int] = {}
        self.element_index: dict[str, tuple[str, int]] = {}
        self.nodes: list[str] = []
        self.node_names: list[str] = []
        self.branches: list[tuple[str, str, str, str, int]] = []
        # run-time value bindings: table -> (mRIDs in row order); filled by the builder
        self._rows: dict[str, list[str]] = defaultdict(list)
        self._consumer_phases: dict[str, list[str]] = {}  # consumer mRID -> phase-object mRIDs
        self._phase_letters: dict[str, str] = {}  # consumer mRID -> phases split equally (no phase objects)
        self._sign: dict[str, float] = {}  # storage: -1 (CIM generation positive, pandapower load positive)
        self._taps: list[tuple[str, int, str]] = []  # (table, index, tap changer mRID)
        self._source_vn: list[float] = []
        self._model_ref: weakref.ref[NetworkModel] | None = None
        self._objects: dict[str, list[Any]] = {}

    # -- update ---------------------------------------------------------------------------

    def _bind(self, model: NetworkModel) -> None:
        """Resolve the mRIDs of every updated row to objects of ``model`` (once per model)."""
        if self._model_ref is not None and self._model_ref() is model:
            return
        objects = model.objects
        try:
            self._objects = {table: [objects[m] for m in mrids] for table, mrids in self._rows.items()}
            self._objects["_taps"] = [objects[m] for _, _, m in self._taps]
            self._phase_objects = {c: [objects[m] for m in phases] for c, phases in self._consumer_phases.items()}
        except KeyError as exc:
            raise ConversionError(
                f"model {model.name!r} lacks object {exc.args[0]!r} of the converted network"
            ) from None
        self._model_ref = weakref.ref(model)

    def update(self, model: NetworkModel) -> None:
        """Copy run-time values from ``model`` into :attr:`net` in place (no rebuild)."""
        self._bind(model)
        net = self.net
        o = self._objects
        loads = o.get("load", [])
        if loads:
            p = np.empty(len(loads))
            q = np.empty(len(loads))
            for i, c in enumerate(loads):
                phases = self._phase_objects.get(c.mrid)
                if phases:
                    p[i] = sum(ph.p_mw for ph in phases)
                    q[i] = sum(ph.q_mvar for ph in phases)
                else:
                    p[i] = c.p_mw
                    q[i] = c.q_mvar
            net.load["p_mw"] = p
            net.load["q_mvar"] = q
            net.load["in_service"] = np.fromiter((c.in_service for c in loads), bool, len(loads))
        asym = o.get("asymmetric_load", [])
        if asym:
            values = np.zeros((len(asym), 6))
            for i, c in enumerate(asym):
                phases = self._phase_objects.get(c.mrid)
                if phases:
                    for ph in phases:
                        k = "ABC".index(ph.phase[0])
                        values[i, k] += ph.p_mw
                        values[i, 3 + k] += ph.q_mvar
                else:
                    letters = self._phase_letters[c.mrid]
                    for letter in letters:
                        k = "ABC".index(letter)
                        values[i, k] = c.p_mw / len(letters)
                        values[i, 3 + k] = c.q_mvar / len(letters)
            for k, column in enumerate(("p_a_mw", "p_b_mw", "p_c_mw", "q_a_mvar", "q_b_mvar", "q_c_mvar")):
                net.asymmetric_load[column] = values[:, k]
            net.asymmetric_load["in_service"] = np.fromiter((c.in_service for c in asym), bool, len(asym))
        for table in ("sgen", "storage"):
            objs = o.get(table, [])
            if objs:
                sign = -1.0 if table == "storage" else 1.0
                net[table]["p_mw"] = sign * np.fromiter((g.p_mw for g in objs), float, len(objs))
                net[table]["q_mvar"] = sign * np.fromiter((g.q_mvar for g in objs), float, len(objs))
                net[table]["in_service"] = np.fromiter((g.in_service for g in objs), bool, len(objs))
        switches = o.get("switch", [])
        if switches:
            net.switch["closed"] = np.fromiter((not s.open and s.in_service for s in switches), bool, len(switches))
        for table in ("line", "trafo", "trafo3w"):
            objs = o.get(table, [])
            if objs:
                values = np.fromiter((e.in_service for e in objs), bool, len(objs))
                if len(objs) != len(net[table]):  # internal source-impedance lines follow the model's lines
                    values = np.concatenate([values, net[table]["in_service"].to_numpy(dtype=bool)[len(objs):]])
                net[table]["in_service"] = values
        taps = o.get("_taps", [])
        if taps:
            steps = np.fromiter((t.step for t in taps), float, len(taps))
            for table in ("trafo", "trafo3w"):
                rows = [i for i, (tab, _, _) in enumerate(self._taps) if tab == table]
                if rows:
                    index = [self._taps[i][1] for i in rows]
                    if len(index) == len(net[table]):
                        column = net[table]["tap_pos"].to_numpy(dtype=float, copy=True)
                        column[np.asarray(index)] = steps[rows]
                        net[table]["tap_pos"] = column
                    else:
                        net[table].loc[index, "tap_pos"] = steps[rows]
        shunts = o.get("shunt", [])
        if shunts:
            net.shunt["step"] = np.fromiter((s.sections for s in shunts), float, len(shunts))
            net.shunt["in_service"] = np.fromiter((s.in_service for s in shunts), bool, len(shunts))
        sources = o.get("ext_grid", [])
        if sources:
            vn = np.asarray(self._source_vn)
            kv = np.fromiter((s.voltage_kv for s in sources), float, len(sources))
            net.ext_grid["vm_pu"] = np.where(kv > 0, kv / vn, 1.0)
            net.ext_grid["va_degree"] = np.fromiter((s.voltage_angle_deg for s in sources), float, len(sources))
            net.ext_grid["in_service"] = np.fromiter((s.in_service for s in sources), bool, len(sources))


class _Builder:
    """Builds a :class:`PandapowerNetwork` from a model (used by :func:`to_pandapower`)."""

    def __init__(self, model: NetworkModel, unbalanced: bool, f_hz: float, source_impedance: bool = False) -> None:
        self.model = model
        self.unbalanced = unbalanced
        self.source_impedance = source_impedance
        self.f_hz = f_hz
        self.result = PandapowerNetwork(unbalanced)
        self.net = self.result.net
        self.net.f_hz = f_hz

    # -- nodes ----------------------------------------------------------------------------

    def node_voltages(self, nodes: list[str]) -> dict[str, float]:
        model = self.model
        kv: dict[str, float] = {}
        objects = model.objects

        def base_kv(ref: str | None) -> float | None:
            obj = objects.get(ref) if ref else None
            if isinstance(obj, BaseVoltage) and obj.nominal_kv > 0:
                return obj.nominal_kv
            if isinstance(obj, VoltageLevel | TopologicalNode):
                return base_kv(obj.base_voltage)
            return None

        for node in nodes:
            obj = objects.get(node)
            value = None
            if isinstance(obj, ConnectivityNode):
                value = base_kv(obj.container) or base_kv(obj.topological_node)
            elif isinstance(obj, TopologicalNode):
                value = base_kv(obj.base_voltage) or base_kv(obj.container)
            if value:
                kv[node] = value
        # transformer ends know their side's voltage
        for end in model.of_type(PowerTransformerEnd):
            node = self.end_node(end)
            if node is not None and node not in kv:
                value = base_kv(end.base_voltage) or (end.rated_u_kv or None)
                if value:
                    kv[node] = value
        # then any equipment's BaseVoltage, EnergySource nominal voltage
        for terminal in model.of_type(Terminal):
            node = model.node_of(terminal)
            if node is None or node in kv:
                continue
            equipment = objects.get(terminal.conducting_equipment)
            if isinstance(equipment, PowerTransformer):
                continue
            value = base_kv(getattr(equipment, "base_voltage", None))
            if not value and isinstance(equipment, EnergySource) and equipment.nominal_kv > 0:
                value = equipment.nominal_kv
            if not value and isinstance(equipment, LinearShuntCompensator) and equipment.nominal_kv > 0:
                value = equipment.nominal_kv
            if value:
                kv[node] = value
        # propagate over lines and switches (same voltage level)
        neighbours: dict[str, list[str]] = defaultdict(list)
        for equipment in (*model.of_type(ACLineSegment), *model.of_type(Switch)):
            ends = [n for n in model.nodes_of(equipment) if n is not None]
            if len(ends) == 2:
                neighbours[ends[0]].append(ends[1])
                neighbours[ends[1]].append(ends[0])
        queue = deque(kv)
        while queue:
            node = queue.popleft()
            for other in neighbours.get(node, ()):
                if other not in kv:
                    kv[other] = kv[node]
                    queue.append(other)
        missing = [n for n in nodes if n not in kv]
        if missing:
            obj = objects.get(missing[0])
            what = _label(obj) if obj is not None else repr(missing[0])
            raise ConversionError(
                f"cannot determine the nominal voltage of node {what}"
                f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}: give its VoltageLevel or connected "
                "equipment a BaseVoltage"
            )
        return kv

    def end_node(self, end: PowerTransformerEnd) -> str | None:
        model = self.model
        if end.terminal and end.terminal in model.objects:
            return model.node_of(model.get(end.terminal, Terminal))
        if end.power_transformer and end.power_transformer in model.objects:
            pt = model.get(end.power_transformer, PowerTransformer)
            terminals = model.terminals(pt)
            if 0 < end.end_number <= len(terminals):
                return model.node_of(terminals[end.end_number - 1])
        return None

    def bus(self, node: str | None, equipment: Any) -> int:
        if node is None:
            raise ConversionError(f"{_label(equipment)} has a terminal without a node")
        return self.result.bus_of[node]

    def buses_of(self, equipment: ConductingEquipment, count: int) -> list[int]:
        nodes = self.model.nodes_of(equipment)
        if len(nodes) != count:
            raise ConversionError(f"{_label(equipment)} has {len(nodes)} terminals, expected {count}")
        return [self.bus(n, equipment) for n in nodes]

    def connected(self, equipment: ConductingEquipment) -> bool:
        return equipment.in_service and all(t.connected for t in self.model.terminals(equipment))

    # -- build ----------------------------------------------------------------------------

    def build(self) -> PandapowerNetwork:
        model = self.model
        result = self.result
        nodes = model.node_ids()
        if not nodes:
            raise ConversionError(f"model {model.name!r} has no nodes")
        kv = self.node_voltages(nodes)
        names = []
        for node in nodes:
            obj = model.objects.get(node)
            names.append(obj.name if obj is not None and obj.name else node)
        index = pp.create_buses(self.net, len(nodes), [kv[n] for n in nodes], name=names)
        result.bus_of = {n: int(i) for n, i in zip(nodes, index, strict=True)}
        result.nodes = nodes
        result.node_names = [n.lower() for n in names]
        self.kv = kv
        self.lines()
        self.transformers()
        self.switches()
        self.consumers()
        self.generators()
        self.sources()
        self.shunts()
        return result

    def _check_three_phase(self, equipment: ConductingEquipment) -> None:
        if len(_abc(equipment.phases)) != 3:
            raise ConversionError(
                f"{_label(equipment)} has phases {equipment.phases!r}: single- and two-phase equipment cannot be "
                "converted to pandapower; use the opendss solver"
            )

    def lines(self) -> None:
        model = self.model
        rows: dict[str, list[Any]] = defaultdict(list)
        lines = model.of_type(ACLineSegment)
        two_pi_f = 2 * math.pi * self.f_hz
        for line in lines:
            self._check_three_phase(line)
            fb, tb = self.buses_of(line, 2)
            length = line.length_km if line.length_km and line.length_km > 0 else 0.0
            z1, z0, b1, b0 = self.line_impedance(line)  # per km if length > 0 else totals
            if self.unbalanced and z0 is None:  # unknown zero sequence: the positive one (as power-grid-model)
                z0, b0 = z1, b1
            pp_length = length if length > 0 else 1.0
            rows["from_buses"].append(fb)
            rows["to_buses"].append(tb)
            rows["length_km"].append(pp_length)
            rows["r_ohm_per_km"].append(z1.real)
            rows["x_ohm_per_km"].append(z1.imag)
            rows["c_nf_per_km"].append(b1 / two_pi_f * 1e3)
            rows["r0_ohm_per_km"].append(z0.real if z0 is not None else math.nan)
            rows["x0_ohm_per_km"].append(z0.imag if z0 is not None else math.nan)
            rows["c0_nf_per_km"].append(b0 / two_pi_f * 1e3 if b0 is not None else math.nan)
            rows["max_i_ka"].append(line.max_i_ka if line.max_i_ka else math.nan)
            rows["name"].append(line.name or line.mrid)
            rows["in_service"].append(self.connected(line))
        if not lines:
            return
        index = pp.create_lines_from_parameters(self.net, **rows)
        self._register("line", lines, index)
        for line, i in zip(lines, index, strict=True):
            self.result.branches.append((line.mrid, (line.name or line.mrid).lower(), "ACLineSegment", "line", int(i)))

    def line_impedance(self, line: ACLineSegment) -> tuple[complex, complex | None, float, float | None]:
        """Positive/zero-sequence series impedance (ohm) and shunt susceptance (µS), per km if the
        line has a length, else totals."""
        length = line.length_km if line.length_km and line.length_km > 0 else 0.0
        if line.r_ohm is not None or line.x_ohm is not None:
            scale = 1.0 / length if length > 0 else 1.0
            z1 = complex(line.r_ohm or 0.0, line.x_ohm or 0.0) * scale
            b1 = (line.b_us or 0.0) * scale
            z0 = None
            if line.r0_ohm is not None or line.x0_ohm is not None:
                z0 = complex(line.r0_ohm or 0.0, line.x0_ohm or 0.0) * scale
                if z0 == 0:
                    z0 = None
            b0 = (line.b0_us or 0.0) * scale if z0 is not None else None
            return z1, z0, b1, b0
        if not line.per_length_impedance:
            raise ConversionError(f"{_label(line)} has neither total nor per-length impedance")
        if length <= 0:
            raise ConversionError(f"{_label(line)} has a per-length impedance but no length")
        impedance = self.model.get(line.per_length_impedance)
        if isinstance(impedance, PerLengthSequenceImpedance):
            z1 = complex(impedance.r_ohm_per_km, impedance.x_ohm_per_km)
            z0 = complex(impedance.r0_ohm_per_km, impedance.x0_ohm_per_km)
            if z0 == 0:
                return z1, None, impedance.b_us_per_km, None
            return z1, z0, impedance.b_us_per_km, impedance.b0_us_per_km
        if isinstance(impedance, PerLengthPhaseImpedance):
            return _sequence_from_phase(impedance, line)
        raise ConversionError(f"{_label(line)}: per-length impedance {impedance!r} is of unsupported class")

    def transformers(self) -> None:
        model = self.model
        tanks: dict[str, int] = defaultdict(int)
        for tank in model.of_type(TransformerTank):
            if tank.power_transformer:
                tanks[tank.power_transformer] += 1
        ends_of: dict[str, list[PowerTransformerEnd]] = defaultdict(list)
        for end in model.of_type(PowerTransformerEnd):
            owner = end.power_transformer
            if owner is None and end.transformer_tank and end.transformer_tank in model.objects:
                owner = model.get(end.transformer_tank, TransformerTank).power_transformer
            if owner:
                ends_of[owner].append(end)
        taps: dict[str, RatioTapChanger] = {t.transformer_end: t for t in model.of_type(RatioTapChanger)}
        two: list[tuple[PowerTransformer, list[PowerTransformerEnd]]] = []
        three: list[tuple[PowerTransformer, list[PowerTransformerEnd]]] = []
        for pt in model.of_type(PowerTransformer):
            ends = sorted(ends_of.get(pt.mrid, []), key=lambda e: e.end_number)
            bank = tanks.get(pt.mrid, 0) > 1 or any(e.connection.upper() == "I" for e in ends)
            if bank or any(len(_abc(e.phases)) != 3 for e in ends) or len(_abc(pt.phases)) != 3:
                raise ConversionError(
                    f"{_label(pt)} is a bank of single-phase transformers (or not three-phase): pandapower cannot "
                    "represent it; use the opendss solver"
                )
            if len(ends) == 2:
                two.append((pt, ends))
            elif len(ends) == 3:
                three.append((pt, ends))
            else:
                raise ConversionError(f"{_label(pt)} has {len(ends)} windings; 2 or 3 are supported")
        if two:
            self._two_winding(two, taps)
        for pt, ends in three:
            self._three_winding(pt, ends, taps)

    def _end_bus(self, end: PowerTransformerEnd, pt: PowerTransformer) -> int:
        node = self.end_node(end)
        if node is None:
            raise ConversionError(f"{_label(end)} of {_label(pt)} has no terminal with a node")
        return self.result.bus_of[node]

    def _two_winding(
        self, items: list[tuple[PowerTransformer, list[PowerTransformerEnd]]], taps: dict[str, RatioTapChanger]
    ) -> None:
        rows: dict[str, list[Any]] = defaultdict(list)
        tap_rows: list[tuple[int, str]] = []
        for k, (pt, (e1, e2)) in enumerate(items):
            u1, u2 = e1.rated_u_kv, e2.rated_u_kv
            sn = e1.rated_s_mva or e2.rated_s_mva
            if not (u1 > 0 and u2 > 0 and sn > 0):
                raise ConversionError(f"{_label(pt)} needs rated_u_kv and rated_s_mva on its ends")
            ratio2 = (u1 / u2) ** 2
            r = e1.r_ohm + e2.r_ohm * ratio2
            x = e1.x_ohm + e2.x_ohm * ratio2
            zb = u1**2 / sn
            g = (e1.g_us + e2.g_us / ratio2) * 1e-6
            b = (abs(e1.b_us) + abs(e2.b_us) / ratio2) * 1e-6
            rows["hv_buses"].append(self._end_bus(e1, pt))
            rows["lv_buses"].append(self._end_bus(e2, pt))
            rows["sn_mva"].append(sn)
            rows["vn_hv_kv"].append(u1)
            rows["vn_lv_kv"].append(u2)
            rows["vkr_percent"].append(r / zb * 100)
            rows["vk_percent"].append(abs(complex(r, x)) / zb * 100)
            rows["pfe_kw"].append(g * u1**2 * 1e3)
            rows["i0_percent"].append(abs(complex(g, b)) * u1**2 / sn * 100)
            rows["shift_degree"].append(((e2.phase_angle_clock - e1.phase_angle_clock) % 12) * 30.0)
            rows["name"].append(pt.name or pt.mrid)
            rows["in_service"].append(self.connected(pt))
            rows["vector_group"].append(_vector_group(e1, e2))
            r0 = (e1.r0_ohm or 0.0) + (e2.r0_ohm or 0.0) * ratio2
            x0 = (e1.x0_ohm or 0.0) + (e2.x0_ohm or 0.0) * ratio2
            if e1.r0_ohm is None and e1.x0_ohm is None and e2.r0_ohm is None and e2.x0_ohm is None:
                r0, x0 = r, x
            rows["vk0_percent"].append(abs(complex(r0, x0)) / zb * 100)
            rows["vkr0_percent"].append(r0 / zb * 100)
            z0_pu = abs(complex(r0, x0)) / zb or abs(complex(r, x)) / zb
            mag0, mag0_rx = _zero_sequence_magnetising(g, b, u1, sn, z0_pu)
            rows["mag0_percent"].append(mag0)
            rows["mag0_rx"].append(mag0_rx)
            rows["si0_hv_partial"].append(SI0_HV_PARTIAL)
            tap = taps.get(e1.mrid) or taps.get(e2.mrid)
            if tap is not None and taps.get(e1.mrid) and taps.get(e2.mrid):
                raise ConversionError(f"{_label(pt)} has tap changers on both ends; one is supported")
            if tap is not None:
                rows["tap_side"].append("hv" if tap.transformer_end == e1.mrid else "lv")
                rows["tap_neutral"].append(float(tap.neutral_step))
                rows["tap_min"].append(float(tap.low_step))
                rows["tap_max"].append(float(tap.high_step))
                rows["tap_step_percent"].append(tap.step_voltage_increment_percent)
                rows["tap_step_degree"].append(0.0)
                rows["tap_pos"].append(float(tap.step))
                rows["tap_changer_type"].append("Ratio")
                tap_rows.append((k, tap.mrid))
            else:
                for column in ("tap_neutral", "tap_min", "tap_max", "tap_step_percent", "tap_step_degree", "tap_pos"):
                    rows[column].append(math.nan)
                rows["tap_side"].append(None)
                rows["tap_changer_type"].append(None)
        groups = rows.pop("vector_group")
        index = pp.create_transformers_from_parameters(self.net, **rows)
        self.net.trafo.loc[index, "vector_group"] = groups
        pts = [pt for pt, _ in items]
        self._register("trafo", pts, index)
        for k, mrid in tap_rows:
            self.result._taps.append(("trafo", int(index[k]), mrid))
        for pt, i in zip(pts, index, strict=True):
            self.result.branches.append((pt.mrid, (pt.name or pt.mrid).lower(), "PowerTransformer", "trafo", int(i)))

    def _three_winding(
        self, pt: PowerTransformer, ends: list[PowerTransformerEnd], taps: dict[str, RatioTapChanger]
    ) -> None:
        u = [e.rated_u_kv for e in ends]
        sn = [e.rated_s_mva for e in ends]
        if min(u) <= 0 or min(sn) <= 0:
            raise ConversionError(f"{_label(pt)} needs rated_u_kv and rated_s_mva on its three ends")
        base = sn[0]
        # star impedances in pu on ``base`` -> delta (pair) values in percent of min(sn_i, sn_j)
        r = [e.r_ohm / (ui**2 / base) for e, ui in zip(ends, u, strict=True)]
        x = [e.x_ohm / (ui**2 / base) for e, ui in zip(ends, u, strict=True)]
        pairs = ((0, 1), (1, 2), (0, 2))  # hv-mv, mv-lv, hv-lv
        vk, vkr = [], []
        for i, j in pairs:
            scale = min(sn[i], sn[j]) / base * 100
            vkr.append((r[i] + r[j]) * scale)
            vk.append(abs(complex(r[i] + r[j], x[i] + x[j])) * scale)
        g = sum(e.g_us * (ui / u[0]) ** 2 for e, ui in zip(ends, u, strict=True)) * 1e-6
        b = sum(abs(e.b_us) * (ui / u[0]) ** 2 for e, ui in zip(ends, u, strict=True)) * 1e-6
        tap = next((taps[e.mrid] for e in ends if e.mrid in taps), None)
        kwargs: dict[str, Any] = {}
        if tap is not None:
            side = ("hv", "mv", "lv")[[e.mrid for e in ends].index(tap.transformer_end)]
            kwargs = {
                "tap_side": side,
                "tap_neutral": float(tap.neutral_step),
                "tap_min": float(tap.low_step),
                "tap_max": float(tap.high_step),
                "tap_step_percent": tap.step_voltage_increment_percent,
                "tap_step_degree": 0.0,
                "tap_pos": float(tap.step),
                "tap_changer_type": "Ratio",
            }
        if self.unbalanced:
            raise ConversionError(f"{_label(pt)}: three-winding transformers are not supported by runpp_3ph")
        clock = [e.phase_angle_clock for e in ends]
        index = pp.create_transformer3w_from_parameters(
            self.net,
            *(self._end_bus(e, pt) for e in ends),
            *u,
            *sn,
            vk_hv_percent=vk[0],
            vk_mv_percent=vk[1],
            vk_lv_percent=vk[2],
            vkr_hv_percent=vkr[0],
            vkr_mv_percent=vkr[1],
            vkr_lv_percent=vkr[2],
            pfe_kw=g * u[0] ** 2 * 1e3,
            i0_percent=abs(complex(g, b)) * u[0] ** 2 / sn[0] * 100,
            shift_mv_degree=((clock[1] - clock[0]) % 12) * 30.0,
            shift_lv_degree=((clock[2] - clock[0]) % 12) * 30.0,
            name=pt.name or pt.mrid,
            in_service=self.connected(pt),
            **kwargs,
        )
        self._register("trafo3w", [pt], [index])
        if tap is not None:
            self.result._taps.append(("trafo3w", int(index), tap.mrid))
        self.result.branches.append((pt.mrid, (pt.name or pt.mrid).lower(), "PowerTransformer", "trafo3w", int(index)))

    def switches(self) -> None:
        switches = self.model.of_type(Switch)
        if not switches:
            return
        buses, elements, closed, types, names = [], [], [], [], []
        for switch in switches:
            a, b = self.buses_of(switch, 2)
            buses.append(a)
            elements.append(b)
            closed.append(not switch.open and self.connected(switch))
            types.append(switch_type(switch))
            names.append(switch.name or switch.mrid)
        index = pp.create_switches(self.net, buses, elements, "b", closed=closed, type=types, name=names)
        self._register("switch", switches, index)

    def consumers(self) -> None:
        model = self.model
        phase_objects: dict[str, list[EnergyConsumerPhase]] = defaultdict(list)
        for phase in model.of_type(EnergyConsumerPhase):
            phase_objects[phase.consumer].append(phase)
        balanced: list[EnergyConsumer] = []
        asym: list[EnergyConsumer] = []
        result = self.result
        for consumer in model.of_type(EnergyConsumer):
            phases = phase_objects.get(consumer.mrid, [])
            letters = _abc(consumer.phases)
            for ph in phases:
                if ph.phase[:1] not in ("A", "B", "C"):
                    raise ConversionError(f"{_label(consumer)} has phase {ph.phase!r}: use the opendss solver")
            if letters == "s" or not letters:
                raise ConversionError(f"{_label(consumer)} has phases {consumer.phases!r}: use the opendss solver")
            if phases:
                result._consumer_phases[consumer.mrid] = [ph.mrid for ph in phases]
            if self.unbalanced and (phases or len(letters) < 3):
                asym.append(consumer)
                if not phases:
                    result._phase_letters[consumer.mrid] = letters
            else:
                balanced.append(consumer)
        if balanced:
            rows: dict[str, list[Any]] = defaultdict(list)
            for consumer in balanced:
                z, i = self.zip_percent(consumer)
                rows["buses"].append(self.buses_of(consumer, 1)[0])
                rows["p_mw"].append(0.0)
                rows["q_mvar"].append(0.0)
                rows["const_z_p_percent"].append(z[0])
                rows["const_i_p_percent"].append(i[0])
                rows["const_z_q_percent"].append(z[1])
                rows["const_i_q_percent"].append(i[1])
                rows["name"].append(consumer.name or consumer.mrid)
                rows["in_service"].append(self.connected(consumer))
            index = pp.create_loads(self.net, **rows)
            # `type` column: wye/delta (informational in the balanced model)
            self.net.load["type"] = ["delta" if c.connection.upper().startswith("D") else "wye" for c in balanced]
            self._register("load", balanced, index)
        for consumer in asym:
            index = pp.create_asymmetric_load(
                self.net,
                self.buses_of(consumer, 1)[0],
                name=consumer.name or consumer.mrid,
                in_service=self.connected(consumer),
                type="delta" if consumer.connection.upper().startswith("D") else "wye",
            )
            self._register("asymmetric_load", [consumer], [index])

    def zip_percent(self, consumer: EnergyConsumer) -> tuple[tuple[float, float], tuple[float, float]]:
        if not consumer.load_response:
            return (0.0, 0.0), (0.0, 0.0)
        lrc = self.model.get(consumer.load_response, LoadResponseCharacteristic)
        if lrc.exponent_model:
            shares = []
            for exponent in (lrc.p_voltage_exponent, lrc.q_voltage_exponent):
                if exponent not in (0, 1, 2):
                    raise ConversionError(
                        f"{_label(consumer)}: exponential load model with exponent {exponent} ({_label(lrc)}) "
                        "is not supported by pandapower (only 0, 1, 2)"
                    )
                shares.append((100.0 if exponent == 2 else 0.0, 100.0 if exponent == 1 else 0.0))
            return (shares[0][0], shares[1][0]), (shares[0][1], shares[1][1])
        return (
            (lrc.p_constant_impedance * 100, lrc.q_constant_impedance * 100),
            (lrc.p_constant_current * 100, lrc.q_constant_current * 100),
        )

    def generators(self) -> None:
        model = self.model
        batteries = {
            u.power_electronics_connection for u in model.of_type(BatteryUnit) if u.power_electronics_connection
        }
        sgens: list[ConductingEquipment] = []
        storages: list[PowerElectronicsConnection] = []
        for pec in model.of_type(PowerElectronicsConnection):
            # runpp_3ph ignores the storage table: batteries are (generation-positive) sgens there
            (storages if pec.mrid in batteries and not self.unbalanced else sgens).append(pec)
        sgens.extend(model.of_type(SynchronousMachine))
        for equipment in (*sgens, *storages):
            self._check_three_phase(equipment)
        if sgens:
            index = pp.create_sgens(
                self.net,
                [self.buses_of(g, 1)[0] for g in sgens],
                p_mw=0.0,
                q_mvar=0.0,
                sn_mva=[g.rated_s_mva or math.nan for g in sgens],
                name=[g.name or g.mrid for g in sgens],
                in_service=[self.connected(g) for g in sgens],
            )
            if self.unbalanced:  # runpp_3ph only takes sgens of type "wye" (three-phase, balanced) into account
                self.net.sgen["type"] = "wye"
            else:
                self.net.sgen["type"] = ["SM" if isinstance(g, SynchronousMachine) else "PEC" for g in sgens]
            self._register("sgen", sgens, index)
        if storages:
            energy = defaultdict(float)
            for unit in model.of_type(BatteryUnit):
                energy[unit.power_electronics_connection] += unit.rated_e_mwh
            index = pp.create_storages(
                self.net,
                [self.buses_of(g, 1)[0] for g in storages],
                p_mw=0.0,
                max_e_mwh=[energy[g.mrid] for g in storages],
                sn_mva=[g.rated_s_mva or math.nan for g in storages],
                name=[g.name or g.mrid for g in storages],
                in_service=[self.connected(g) for g in storages],
            )
            self._register("storage", storages, index)

    def sources(self) -> None:
        """EnergySource -> ``ext_grid``: an ideal source (the measured bus voltage), in runpp_3ph too.

        With ``source_impedance`` an EnergySource with r/x gets its Thevenin impedance as a line
        (z1, z0 = r0/x0 or z1) from an internal bus holding the ideal ``ext_grid``: the model of
        power-grid-model's source with ``source_impedance=True`` (voltage behind impedance in all
        sequences; pandapower's ext_grid impedance would act in the negative/zero sequence only).
        """
        sources = self.model.of_type(EnergySource)
        if not sources:
            raise ConversionError(f"model {self.model.name!r} has no EnergySource (slack)")
        for source in sources:
            bus = self.buses_of(source, 1)[0]
            vn = float(self.net.bus.at[bus, "vn_kv"])
            nominal = source.nominal_kv or vn
            z1 = complex(source.r_ohm, source.x_ohm) * (vn / nominal) ** 2
            z0 = complex(source.r0_ohm, source.x0_ohm) * (vn / nominal) ** 2
            kwargs: dict[str, float] = {}
            if self.unbalanced:  # ideal in all sequences (the positive sequence is an ideal slack anyway)
                kwargs.update(s_sc_max_mva=STIFF_S_SC_MVA, s_sc_min_mva=STIFF_S_SC_MVA, rx_max=0.1, rx_min=0.1)
                kwargs.update(x0x_max=1.0, r0x0_max=0.1, x0x_min=1.0, r0x0_min=0.1)
            elif abs(z1) > 0:  # short-circuit data only (runpp's ext_grid is ideal)
                s_sc = vn**2 / abs(z1)
                rx = z1.real / z1.imag if z1.imag else 1.0
                kwargs.update(s_sc_max_mva=s_sc, s_sc_min_mva=s_sc, rx_max=rx, rx_min=rx)
                if z1.imag and abs(z0) > 0:
                    x0x = z0.imag / z1.imag
                    r0x0 = z0.real / z0.imag if z0.imag else 1.0
                    kwargs.update(x0x_max=x0x, r0x0_max=r0x0, x0x_min=x0x, r0x0_min=r0x0)
            at = bus
            if self.source_impedance and abs(z1) > 0:
                at = int(pp.create_bus(self.net, vn, name=f"{source.name or source.mrid} (internal)"))
                z0 = z0 if abs(z0) > 0 else z1
                pp.create_line_from_parameters(
                    self.net, at, bus, 1.0, z1.real, z1.imag, 0.0, math.inf,
                    r0_ohm_per_km=z0.real, x0_ohm_per_km=z0.imag, c0_nf_per_km=0.0,
                    name=f"{source.name or source.mrid} impedance", in_service=self.connected(source),
                )
            index = pp.create_ext_grid(
                self.net, at, name=source.name or source.mrid, in_service=self.connected(source), **kwargs
            )
            self._register("ext_grid", [source], [index])
            self.result._source_vn.append(vn)

    def shunts(self) -> None:
        shunts = self.model.of_type(LinearShuntCompensator)
        if not shunts:
            return
        buses, q, p, vn, step, max_step, names, service = [], [], [], [], [], [], [], []
        for shunt in shunts:
            bus = self.buses_of(shunt, 1)[0]
            kv = shunt.nominal_kv or float(self.net.bus.at[bus, "vn_kv"])
            buses.append(bus)
            vn.append(kv)
            q.append(-shunt.b_per_section_us * 1e-6 * kv**2)
            p.append(shunt.g_per_section_us * 1e-6 * kv**2)
            step.append(round(shunt.sections))
            max_step.append(int(shunt.maximum_sections))
            names.append(shunt.name or shunt.mrid)
            service.append(self.connected(shunt))
        index = pp.create_shunts(
            self.net, buses, q, p_mw=p, vn_kv=vn, step=step, max_step=max_step, name=names, in_service=service
        )
        self._register("shunt", shunts, index)

    def _register(self, table: str, objects: Sequence[Any], index: Any) -> None:
        for obj, i in zip(objects, index, strict=True):
            self.result.element_index[obj.mrid] = (table, int(i))
            self.result._rows[table].append(obj.mrid)


def _zero_sequence_magnetising(g: float, b: float, u_kv: float, sn_mva: float, z0_pu: float) -> tuple[float, float]:
    """pandapower's ``mag0_percent`` (z_mag0 / z_k0 in %) and ``mag0_rx`` for a zero-sequence
    magnetising admittance equal to the positive-sequence one ``g + jb`` (S, referred to ``u_kv``)."""
    y_pu = abs(complex(g, b)) * u_kv**2 / sn_mva  # = i0_percent / 100
    if y_pu <= 0 or z0_pu <= 0:
        return MAG0_OPEN_PERCENT, 0.0
    mag0 = min(100.0 / y_pu / z0_pu, MAG0_OPEN_PERCENT)
    rx = g / abs(b) if b else (MAG0_RX_RESISTIVE if g else 0.0)
    return mag0, min(rx, MAG0_RX_RESISTIVE)


def common_3ph_model(net: pp.pandapowerNet) -> pp.pandapowerNet:
    """Give a pandapower net the runpp_3ph settings :func:`to_pandapower` uses (in place; returns ``net``).

    The physical model shared with power-grid-model (README.md): the zero-sequence magnetising
    impedance of two-winding transformers from their no-load current and iron losses (none: open),
    an ideal external grid in all sequences, sgens of type ``"wye"``. For comparing a pandapower
    net with the plugins' results on its model (``from_pandapower``).
    """
    trafo = net.trafo
    for i in trafo.index:
        sn, u1 = float(trafo.at[i, "sn_mva"]), float(trafo.at[i, "vn_hv_kv"])
        g = _num(trafo.at[i, "pfe_kw"]) * 1e-3 / u1**2
        y = _num(trafo.at[i, "i0_percent"]) / 100 * sn / u1**2
        b = math.sqrt(max(y**2 - g**2, 0.0))
        vk0 = _num(trafo.at[i, "vk0_percent"]) if "vk0_percent" in trafo else 0.0
        mag0, rx = _zero_sequence_magnetising(g, b, u1, sn, (vk0 or float(trafo.at[i, "vk_percent"])) / 100)
        trafo.at[i, "mag0_percent"] = mag0
        trafo.at[i, "mag0_rx"] = rx
    if len(net.ext_grid):
        net.ext_grid["s_sc_max_mva"] = STIFF_S_SC_MVA
    if len(net.sgen):
        net.sgen["type"] = "wye"
    return net


def _vector_group(*ends: PowerTransformerEnd) -> str:
    hv = {"D": "D", "Y": "Y", "YN": "YN", "Z": "Z", "ZN": "ZN"}
    parts = []
    for k, end in enumerate(ends):
        code = end.connection.upper()
        if code in ("Y", "Z") and end.grounded:
            code += "N"
        code = hv.get(code, code)
        parts.append(code if k == 0 else code.lower())
    return "".join(parts)


_A = np.exp(2j * np.pi / 3)
_SEQ = np.array([[1, 1, 1], [1, _A**2, _A], [1, _A, _A**2]])
_SEQ_INV = np.linalg.inv(_SEQ)


def _kron(matrix: np.ndarray) -> np.ndarray:
    if matrix.shape[0] == 3:
        return matrix
    p, n = matrix[:3, :3], matrix[:3, 3:]
    return p - n @ np.linalg.inv(matrix[3:, 3:]) @ n.T


def _sequence_from_phase(
    impedance: PerLengthPhaseImpedance, line: ACLineSegment
) -> tuple[complex, complex, float, float]:
    """Positive/zero sequence per km of a 3x3 (or 3+neutral, Kron-reduced) phase impedance matrix."""
    if impedance.conductor_count < 3:
        raise ConversionError(
            f"{_label(line)} has a {impedance.conductor_count}-conductor phase impedance ({_label(impedance)}): "
            "single- and two-phase lines cannot be converted to pandapower; use the opendss solver"
        )
    z, b = impedance.matrices()
    zs = _SEQ_INV @ _kron(np.asarray(z, dtype=complex)) @ _SEQ
    bs = _SEQ_INV @ np.asarray(b, dtype=float)[:3, :3] @ _SEQ
    return complex(zs[1, 1]), complex(zs[0, 0]), float(bs[1, 1].real), float(bs[0, 0].real)


def to_pandapower(
    model: NetworkModel, unbalanced: bool = False, f_hz: float = 50.0, *, source_impedance: bool = False
) -> PandapowerNetwork:
    """Build a pandapower net from ``model`` (for ``runpp``, or ``runpp_3ph`` if ``unbalanced``).

    :param source_impedance: put each EnergySource's Thevenin impedance (r/x, r0/x0) between an
        ideal source and its node (an internal bus and line, not part of the results), as
        power-grid-model's ``source_impedance=True``. Off by default: the source is ideal (its
        voltage is the measured bus voltage) in runpp and runpp_3ph.
    :raises ConversionError: naming the element (mRID and name) that pandapower cannot represent.
    """
    network = _Builder(model, unbalanced, f_hz, source_impedance).build()
    network.update(model)
    return network


# ---------------------------------------------------------------------------------------
# pandapower -> model
# ---------------------------------------------------------------------------------------

_SWITCH_CLASSES: dict[Any, type[Switch]] = {
    "CB": Breaker,
    "LBS": LoadBreakSwitch,
    "LS": LoadBreakSwitch,
    "DS": Disconnector,
}


def _num(value: Any, default: float = 0.0) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(value) else value


def _text(value: Any, default: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return default
    text = str(value)
    return text if text else default


def _points(geo: Any) -> list[tuple[float, float]]:
    if geo is None or (isinstance(geo, float) and math.isnan(geo)):
        return []
    try:
        data = json.loads(geo) if isinstance(geo, str) else geo
        coordinates = data["coordinates"]
    except (TypeError, ValueError, KeyError):
        return []
    if coordinates and isinstance(coordinates[0], int | float):
        return [(float(coordinates[0]), float(coordinates[1]))]
    return [(float(c[0]), float(c[1])) for c in coordinates]


def _col(df: pd.DataFrame, column: str, default: Any = math.nan) -> list[Any]:
    return df[column].tolist() if column in df.columns else [default] * len(df)


def _parse_vector_group(group: str) -> tuple[tuple[str, bool], tuple[str, bool]]:
    """``"Dyn"`` -> ``(("D", False), ("Y", True))``."""
    group = group.strip()
    hv_end = 1
    while hv_end < len(group) and group[hv_end].isupper():
        hv_end += 1
    hv, lv = group[:hv_end].upper(), group[hv_end:].rstrip("0123456789").upper()

    def end(code: str) -> tuple[str, bool]:
        if not code:
            return "Y", False
        return code[0], code.endswith("N")

    return end(hv), end(lv)


def _add_tap_changer(
    model: NetworkModel, mrid: str, pt: PowerTransformer, row: Any, end_of: Callable[[], PowerTransformerEnd]
) -> None:
    """A RatioTapChanger on the tap-side end (``end_of()``) of a pandapower trafo/trafo3w row, if it has tap data."""
    tap_pos = _num(row.get("tap_pos"), math.nan)
    if math.isnan(tap_pos) or math.isnan(_num(row.get("tap_step_percent"), math.nan)):
        return
    end = end_of()
    model.add(
        RatioTapChanger(
            mrid,
            name=f"{pt.name} tap",
            transformer_end=end.mrid,
            low_step=int(_num(row.get("tap_min"), tap_pos)),
            high_step=int(_num(row.get("tap_max"), tap_pos)),
            neutral_step=int(_num(row.get("tap_neutral"))),
            normal_step=int(tap_pos),
            step=tap_pos,
            step_voltage_increment_percent=float(row.tap_step_percent),
            neutral_u_kv=end.rated_u_kv,
        )
    )


def from_pandapower(net: pp.pandapowerNet, name: str = "pandapower") -> NetworkModel:
    """A network model of a pandapower net (buses become ConnectivityNodes, …).

    :raises ConversionError: the net has elements the model cannot represent (voltage-controlled
        ``gen``, impedances, wards, DC lines, asymmetric sgens, phase-shifting taps).
    """
    model = NetworkModel(name)
    f_hz = float(getattr(net, "f_hz", 50.0) or 50.0)
    two_pi_f = 2 * math.pi * f_hz
    for table in ("gen", "impedance", "ward", "xward", "dcline", "asymmetric_sgen", "tcsc", "svc", "ssc", "vsc"):
        if table in net and len(net[table]) and net[table]["in_service"].any():
            raise ConversionError(
                f"pandapower table {table!r} ({len(net[table])} rows) cannot be represented in the model"
            )

    # voltage levels
    levels: dict[float, VoltageLevel] = {}
    base: dict[float, BaseVoltage] = {}

    def level(kv: float) -> VoltageLevel:
        if kv not in levels:
            bv = model.add(BaseVoltage(f"BV_{kv:g}kV", name=f"{kv:g} kV", nominal_kv=kv))
            base[kv] = bv
            levels[kv] = model.add(VoltageLevel(f"VL_{kv:g}kV", name=f"{kv:g} kV", base_voltage=bv.mrid))
        return levels[kv]

    bus_node: dict[int, str] = {}
    bus_kv: dict[int, float] = {}
    bus_location: dict[int, str] = {}
    used_names: set[str] = set()
    geo = _col(net.bus, "geo", None)
    for (i, row), g in zip(net.bus.iterrows(), geo, strict=True):
        kv = float(row.vn_kv)
        node_name = _text(row.get("name"), f"bus {i}")
        if node_name.lower() in used_names:
            node_name = f"{node_name} ({i})"
        used_names.add(node_name.lower())
        node = model.add(ConnectivityNode(f"bus_{i}", name=node_name, container=level(kv).mrid))
        bus_node[int(i)] = node.mrid
        bus_kv[int(i)] = kv
        points = _points(g)
        if points:
            bus_location[int(i)] = model.add(Location(f"loc_bus_{i}", name=node_name, points=points)).mrid
    out_of_service_buses = {int(i) for i in net.bus.index[~net.bus.in_service.astype(bool)]}

    def bv(bus: int) -> str:
        return base[bus_kv[bus]].mrid

    # element switches: insert a node between switch and element
    element_switch: dict[tuple[str, int, int], int] = {}
    switch_rows = net.switch
    for s, row in switch_rows.iterrows():
        et = row.et
        if et == "b":
            continue
        if et not in ("l", "t"):
            raise ConversionError(f"pandapower switch {s} on element type {et!r} cannot be represented")
        element_switch[(et, int(row.element), int(row.bus))] = int(s)
    switch_node: dict[int, str] = {}

    def end_node(et: str, element: int, bus: int) -> str:
        s = element_switch.get((et, element, bus))
        if s is None:
            return bus_node[bus]
        if s not in switch_node:
            node_name = f"{model.get(bus_node[bus]).name} sw{s}"
            switch_node[s] = model.add(
                ConnectivityNode(f"switch_{s}_node", name=node_name, container=level(bus_kv[bus]).mrid)
            ).mrid
        return switch_node[s]

    # lines
    impedances: dict[tuple[float, ...], str] = {}
    line_geo = _col(net.line, "geo", None)
    r0s, x0s, c0s = (_col(net.line, c) for c in ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km"))
    for k, (i, row) in enumerate(net.line.iterrows()):
        label = f"pandapower line {i} ({row.get('name')!r})"
        if _num(row.get("g_us_per_km")) != 0 or _num(row.get("g0_us_per_km")) != 0:
            raise ConversionError(f"{label}: shunt conductance g_us_per_km is not represented in the model")
        parallel = int(_num(row.get("parallel"), 1.0))
        df = _num(row.get("df"), 1.0)
        r0, x0, c0 = _num(r0s[k]), _num(x0s[k]), _num(c0s[k])
        b = two_pi_f * float(row.c_nf_per_km) * 1e-3
        b0 = two_pi_f * c0 * 1e-3
        length = float(row.length_km)
        line = ACLineSegment(
            f"line_{i}",
            name=_text(row.get("name"), f"line {i}"),
            length_km=length,
            base_voltage=bv(int(row.from_bus)),
            in_service=bool(row.in_service),
            max_i_ka=_num(row.max_i_ka, math.nan) * df * parallel,
        )
        if parallel == 1:
            key = (float(row.r_ohm_per_km), float(row.x_ohm_per_km), b, r0, x0, b0)
            if key not in impedances:
                std = _text(row.get("std_type"), f"impedance {len(impedances)}")
                impedances[key] = model.add(
                    PerLengthSequenceImpedance(
                        f"plsi_{len(impedances)}",
                        name=std,
                        r_ohm_per_km=key[0],
                        x_ohm_per_km=key[1],
                        b_us_per_km=b,
                        r0_ohm_per_km=r0,
                        x0_ohm_per_km=x0,
                        b0_us_per_km=b0,
                    )
                ).mrid
            line.per_length_impedance = impedances[key]
        else:
            line.r_ohm = float(row.r_ohm_per_km) * length / parallel
            line.x_ohm = float(row.x_ohm_per_km) * length / parallel
            line.b_us = b * length * parallel
            if r0 or x0:
                line.r0_ohm, line.x0_ohm, line.b0_us = (
                    r0 * length / parallel,
                    x0 * length / parallel,
                    b0 * length * parallel,
                )
        points = _points(line_geo[k])
        if not points:
            points = [
                p
                for bus in (int(row.from_bus), int(row.to_bus))
                if bus in bus_location
                for p in model.get(bus_location[bus], Location).points
            ]
        if points:
            line.location = model.add(Location(f"loc_line_{i}", name=line.name, points=points)).mrid
        if {int(row.from_bus), int(row.to_bus)} & out_of_service_buses:
            line.in_service = False
        model.add(line)
        model.connect(line, end_node("l", int(i), int(row.from_bus)), end_node("l", int(i), int(row.to_bus)))

    # two-winding transformers
    for i, row in net.trafo.iterrows():
        label = f"pandapower trafo {i} ({row.get('name')!r})"
        if _num(row.get("tap_step_degree")) != 0:
            raise ConversionError(f"{label}: phase-shifting taps (tap_step_degree) are not represented in the model")
        if str(row.get("tap_changer_type")) in ("Ideal", "Tabular") or bool(
            row.get("tap_dependency_table", False) is True
        ):
            raise ConversionError(f"{label}: tap changer type {row.get('tap_changer_type')!r} is not supported")
        parallel = int(_num(row.get("parallel"), 1.0))
        sn = float(row.sn_mva) * parallel
        u1, u2 = float(row.vn_hv_kv), float(row.vn_lv_kv)
        zb = u1**2 / sn
        r = float(row.vkr_percent) / 100 * zb
        x = math.sqrt(max((float(row.vk_percent) / 100 * zb) ** 2 - r**2, 0.0))
        g = _num(row.pfe_kw) * 1e-3 / u1**2 * parallel
        y = _num(row.i0_percent) / 100 * sn / u1**2
        b = math.sqrt(max(y**2 - g**2, 0.0))
        shift = _num(row.get("shift_degree"))
        clock = shift / 30.0
        if abs(clock - round(clock)) > 1e-9:
            raise ConversionError(f"{label}: phase shift {shift}° is not a multiple of 30°")
        group = _text(row.get("vector_group"), "")
        if not group:
            # no vector group (pandapower needs none for runpp): one that fits the phase shift, so that
            # the model also solves unbalanced (an odd clock needs one delta winding): Dyn, else YNyn
            group = "Dyn" if round(clock) % 2 else "YNyn"
        (c1, g1), (c2, g2) = _parse_vector_group(group)
        pt = model.add(
            PowerTransformer(
                f"trafo_{i}",
                name=_text(row.get("name"), f"trafo {i}"),
                in_service=bool(row.in_service),
                vector_group=f"{group}{round(clock) % 12}",
            )
        )
        hv_bus, lv_bus = int(row.hv_bus), int(row.lv_bus)
        if {hv_bus, lv_bus} & out_of_service_buses:
            pt.in_service = False
        t1, t2 = model.connect(pt, end_node("t", int(i), hv_bus), end_node("t", int(i), lv_bus))
        vk0, vkr0 = _num(row.get("vk0_percent"), math.nan), _num(row.get("vkr0_percent"), math.nan)
        r0 = x0 = None
        if not math.isnan(vk0):
            r0 = vkr0 / 100 * zb
            x0 = math.sqrt(max((vk0 / 100 * zb) ** 2 - r0**2, 0.0))
        e1 = model.add(
            PowerTransformerEnd(
                f"trafo_{i}_end1",
                name=f"{pt.name} hv",
                power_transformer=pt.mrid,
                terminal=t1.mrid,
                end_number=1,
                rated_s_mva=sn,
                rated_u_kv=u1,
                r_ohm=r,
                x_ohm=x,
                g_us=g * 1e6,
                b_us=b * 1e6,
                r0_ohm=r0,
                x0_ohm=x0,
                connection=c1,
                grounded=g1,
                base_voltage=bv(hv_bus),
            )
        )
        e2 = model.add(
            PowerTransformerEnd(
                f"trafo_{i}_end2",
                name=f"{pt.name} lv",
                power_transformer=pt.mrid,
                terminal=t2.mrid,
                end_number=2,
                rated_s_mva=sn,
                rated_u_kv=u2,
                connection=c2,
                grounded=g2,
                phase_angle_clock=round(clock) % 12,
                base_voltage=bv(lv_bus),
                r0_ohm=0.0 if r0 is not None else None,
                x0_ohm=0.0 if r0 is not None else None,
            )
        )
        _add_tap_changer(model, f"trafo_{i}_tap", pt, row, lambda: e1 if str(row.get("tap_side")) == "hv" else e2)

    # three-winding transformers
    for i, row in net.trafo3w.iterrows():
        label = f"pandapower trafo3w {i} ({row.get('name')!r})"
        if _num(row.get("tap_step_degree")) != 0 or bool(row.get("tap_at_star_point", False)):
            raise ConversionError(f"{label}: phase-shifting taps or taps at the star point are not represented")
        u = [float(row.vn_hv_kv), float(row.vn_mv_kv), float(row.vn_lv_kv)]
        sn = [float(row.sn_hv_mva), float(row.sn_mv_mva), float(row.sn_lv_mva)]
        base_s = sn[0]
        pairs = ((0, 1), (1, 2), (0, 2))
        vk = [float(row.vk_hv_percent), float(row.vk_mv_percent), float(row.vk_lv_percent)]
        vkr = [float(row.vkr_hv_percent), float(row.vkr_mv_percent), float(row.vkr_lv_percent)]
        rd, xd = [], []
        for (a, c), vki, vkri in zip(pairs, vk, vkr, strict=True):
            scale = base_s / min(sn[a], sn[c]) / 100
            rd.append(vkri * scale)
            xd.append(math.sqrt(max(vki**2 - vkri**2, 0.0)) * scale)
        star_r = [(rd[0] + rd[2] - rd[1]) / 2, (rd[0] + rd[1] - rd[2]) / 2, (rd[1] + rd[2] - rd[0]) / 2]
        star_x = [(xd[0] + xd[2] - xd[1]) / 2, (xd[0] + xd[1] - xd[2]) / 2, (xd[1] + xd[2] - xd[0]) / 2]
        g = _num(row.pfe_kw) * 1e-3 / u[0] ** 2
        y = _num(row.i0_percent) / 100 * sn[0] / u[0] ** 2
        b = math.sqrt(max(y**2 - g**2, 0.0))
        clocks = [0, _num(row.get("shift_mv_degree")) / 30.0, _num(row.get("shift_lv_degree")) / 30.0]
        if any(abs(c - round(c)) > 1e-9 for c in clocks):
            raise ConversionError(f"{label}: phase shifts must be multiples of 30°")
        pt = model.add(
            PowerTransformer(
                f"trafo3w_{i}", name=_text(row.get("name"), f"trafo3w {i}"), in_service=bool(row.in_service)
            )
        )
        buses = [int(row.hv_bus), int(row.mv_bus), int(row.lv_bus)]
        terminals = model.connect(pt, *(bus_node[bus] for bus in buses))
        ends = []
        for k, side in enumerate(("hv", "mv", "lv")):
            zb = u[k] ** 2 / base_s
            ends.append(
                model.add(
                    PowerTransformerEnd(
                        f"trafo3w_{i}_end{k + 1}",
                        name=f"{pt.name} {side}",
                        power_transformer=pt.mrid,
                        terminal=terminals[k].mrid,
                        end_number=k + 1,
                        rated_s_mva=sn[k],
                        rated_u_kv=u[k],
                        r_ohm=star_r[k] * zb,
                        x_ohm=star_x[k] * zb,
                        g_us=g * 1e6 if k == 0 else 0.0,
                        b_us=b * 1e6 if k == 0 else 0.0,
                        phase_angle_clock=round(clocks[k]) % 12,
                        base_voltage=bv(buses[k]),
                    )
                )
            )
        _add_tap_changer(model, f"trafo3w_{i}_tap", pt, row, lambda: ends[("hv", "mv", "lv").index(str(row.tap_side))])

    # switches
    for s, row in switch_rows.iterrows():
        cls = _SWITCH_CLASSES.get(row.get("type"), Switch)
        is_open = not bool(row.closed)
        bus = int(row.bus)
        switch = model.add(
            cls(
                f"switch_{s}",
                name=_text(row.get("name"), f"switch {s}"),
                normal_open=is_open,
                open=is_open,
                base_voltage=bv(bus),
            )
        )
        other = bus_node[int(row.element)] if row.et == "b" else switch_node.get(int(s))
        if other is None:  # element switch whose element does not exist
            raise ConversionError(f"pandapower switch {s} refers to a missing {row.et} {row.element}")
        model.connect(switch, bus_node[bus], other)

    def one_terminal(equipment: ConductingEquipment, bus: int) -> None:
        equipment.base_voltage = bv(bus)
        equipment.location = bus_location.get(bus)
        if bus in out_of_service_buses:
            equipment.in_service = False
        model.add(equipment)
        model.connect(equipment, bus_node[bus])

    # loads
    responses: dict[tuple[float, ...], str] = {}
    for i, row in net.load.iterrows():
        scaling = _num(row.get("scaling"), 1.0)
        consumer = EnergyConsumer(
            f"load_{i}",
            name=_text(row.get("name"), f"load {i}"),
            p_mw=float(row.p_mw) * scaling,
            q_mvar=float(row.q_mvar) * scaling,
            in_service=bool(row.in_service),
            connection="D" if str(row.get("type")) == "delta" else "Y",
        )
        key = tuple(
            _num(row.get(c)) / 100
            for c in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent")
        )
        if any(key):
            if key not in responses:
                responses[key] = model.add(
                    LoadResponseCharacteristic(
                        f"lrc_{len(responses)}",
                        name=f"ZIP {len(responses)}",
                        p_constant_impedance=key[0],
                        p_constant_current=key[1],
                        p_constant_power=1 - key[0] - key[1],
                        q_constant_impedance=key[2],
                        q_constant_current=key[3],
                        q_constant_power=1 - key[2] - key[3],
                    )
                ).mrid
            consumer.load_response = responses[key]
        one_terminal(consumer, int(row.bus))
    for i, row in net.asymmetric_load.iterrows():
        scaling = _num(row.get("scaling"), 1.0)
        values = {
            ph: (float(row[f"p_{ph.lower()}_mw"]) * scaling, float(row[f"q_{ph.lower()}_mvar"]) * scaling)
            for ph in "ABC"
        }
        active = [ph for ph, (p, q) in values.items() if p or q] or ["A", "B", "C"]
        delta = str(row.get("type")) == "delta"
        consumer = EnergyConsumer(
            f"asym_load_{i}",
            name=_text(row.get("name"), f"asymmetric load {i}"),
            p_mw=sum(values[ph][0] for ph in active),
            q_mvar=sum(values[ph][1] for ph in active),
            in_service=bool(row.in_service),
            connection="D" if delta else "Y",
            phases="".join(active) + ("" if delta else "N"),
        )
        one_terminal(consumer, int(row.bus))
        for ph in active:
            model.add(
                EnergyConsumerPhase(
                    f"asym_load_{i}_{ph}",
                    name=f"{consumer.name} {ph}",
                    consumer=consumer.mrid,
                    phase=ph,
                    p_mw=values[ph][0],
                    q_mvar=values[ph][1],
                )
            )

    # static generators and storage
    for i, row in net.sgen.iterrows():
        scaling = _num(row.get("scaling"), 1.0)
        kind = _text(row.get("type"), "")
        pec = PowerElectronicsConnection(
            f"sgen_{i}",
            name=_text(row.get("name"), f"sgen {i}"),
            p_mw=float(row.p_mw) * scaling,
            q_mvar=float(row.q_mvar) * scaling,
            rated_s_mva=_num(row.get("sn_mva")),
            in_service=bool(row.in_service),
            rated_u_kv=bus_kv[int(row.bus)],
        )
        one_terminal(pec, int(row.bus))
        # the model has no wind/other unit class (PowerElectronicsUnit is abstract in CIM): every
        # sgen gets a PhotoVoltaicUnit, pandapower's sgen type (PV, WP, ...) kept in its description
        model.add(
            PhotoVoltaicUnit(
                f"sgen_{i}_unit",
                name=f"{pec.name} {kind or 'unit'}",
                description=f"pandapower sgen type {kind}" if kind else "",
                power_electronics_connection=pec.mrid,
                max_p_mw=_num(row.get("sn_mva")),
            )
        )
    for i, row in net.storage.iterrows():
        scaling = _num(row.get("scaling"), 1.0)
        pec = PowerElectronicsConnection(
            f"storage_{i}",
            name=_text(row.get("name"), f"storage {i}"),
            p_mw=-float(row.p_mw) * scaling,
            q_mvar=-float(row.q_mvar) * scaling,
            rated_s_mva=_num(row.get("sn_mva")),
            in_service=bool(row.in_service),
            rated_u_kv=bus_kv[int(row.bus)],
        )
        one_terminal(pec, int(row.bus))
        model.add(
            BatteryUnit(
                f"storage_{i}_unit",
                name=f"{pec.name} battery",
                power_electronics_connection=pec.mrid,
                rated_e_mwh=_num(row.get("max_e_mwh")),
                stored_e_mwh=_num(row.get("max_e_mwh")) * _num(row.get("soc_percent")) / 100,
            )
        )

    # external grids
    for i, row in net.ext_grid.iterrows():
        bus = int(row.bus)
        vn = bus_kv[bus]
        source = EnergySource(
            f"ext_grid_{i}",
            name=_text(row.get("name"), f"external grid {i}"),
            nominal_kv=vn,
            voltage_kv=float(row.vm_pu) * vn,
            voltage_angle_deg=_num(row.get("va_degree")),
            in_service=bool(row.in_service),
        )
        s_sc = _num(row.get("s_sc_max_mva"), math.nan)
        if not math.isnan(s_sc) and s_sc > 0:
            rx = _num(row.get("rx_max"), 0.1)
            z = vn**2 / s_sc
            source.x_ohm = z / math.sqrt(1 + rx**2)
            source.r_ohm = rx * source.x_ohm
            x0x = _num(row.get("x0x_max"), math.nan)
            if not math.isnan(x0x):
                source.x0_ohm = x0x * source.x_ohm
                source.r0_ohm = _num(row.get("r0x0_max")) * source.x0_ohm
        one_terminal(source, bus)

    # shunts
    for i, row in net.shunt.iterrows():
        bus = int(row.bus)
        kv = _num(row.get("vn_kv"), bus_kv[bus]) or bus_kv[bus]
        shunt = LinearShuntCompensator(
            f"shunt_{i}",
            name=_text(row.get("name"), f"shunt {i}"),
            nominal_kv=kv,
            b_per_section_us=-float(row.q_mvar) / kv**2 * 1e6,
            g_per_section_us=float(row.p_mw) / kv**2 * 1e6,
            maximum_sections=int(_num(row.get("max_step"), 1.0)),
            sections=_num(row.get("step"), 1.0),
            normal_sections=int(_num(row.get("step"), 1.0)),
            in_service=bool(row.in_service),
        )
        one_terminal(shunt, bus)
    return model
