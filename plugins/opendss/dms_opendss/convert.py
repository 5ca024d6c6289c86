"""NetworkModel -> OpenDSS script, with the mappings the solver needs to update and read back.

:func:`convert` builds a :class:`DssCircuit` (the script plus name mappings); :func:`to_dss`
returns only the script. The script is complete: ``Clear``, ``New Circuit``, all elements,
``Set VoltageBases`` and ``CalcVoltageBases``; run-time values (loads, switch states, taps,
capacitor sections, source voltage) are also written with their current values, and
:meth:`DssCircuit.update_commands` / the solver's ``update`` re-apply them without recompiling.

Phases: ``A``/``B``/``C`` map to OpenDSS nodes ``.1.2.3``, the split-phase secondary legs
``s1``/``s2`` to ``.1``/``.2``; the neutral ``N`` is the grounded node 0 (a per-length phase
impedance that includes the neutral conductor is Kron-reduced by OpenDSS).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable

import attrs
from dms_kernel.model import (
    ACLineSegment,
    ACLineSegmentPhase,
    BaseVoltage,
    ConductingEquipment,
    EnergyConsumer,
    EnergyConsumerPhase,
    EnergySource,
    LinearShuntCompensator,
    LoadResponseCharacteristic,
    ModelError,
    NetworkModel,
    PerLengthPhaseImpedance,
    PerLengthSequenceImpedance,
    PowerElectronicsConnection,
    PowerTransformer,
    PowerTransformerEnd,
    RatioTapChanger,
    Switch,
    SynchronousMachine,
    Terminal,
    TransformerTank,
)

__all__ = ["DssCircuit", "DssLoad", "convert", "to_dss", "phase_list", "ConversionError"]

PHASE_NODE = {"A": 1, "B": 2, "C": 3, "s1": 1, "s2": 2}
NEXT_PHASE = {"A": "B", "B": "C", "C": "A", "s1": "s2", "s2": "s1"}
_TOKEN = re.compile(r"s1|s2|A|B|C|N")


class ConversionError(ModelError):
    """The model cannot be expressed for OpenDSS (names the offending object)."""


def phase_list(code: str | None) -> list[str]:
    """Phases of a CIM PhaseCode in order, e.g. ``"CBN"`` -> ``["C", "B", "N"]``, ``"s12N"`` -> ``["s1", "s2", "N"]``."""
    if not code:
        return []
    code = code.replace("s12", "s1s2")
    return _TOKEN.findall(code)


def _live(phases: Iterable[str]) -> list[str]:
    return [p for p in phases if p != "N"]


def _nodes(phases: Iterable[str]) -> str:
    return "".join(f".{PHASE_NODE[p]}" for p in _live(phases))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", text).lower() or "x"


def _label(obj) -> str:
    return f"{type(obj).__name__} {obj.mrid!r} ({obj.name!r})"


def _fmt(value: float) -> str:
    return f"{value:.12g}"


@attrs.define
class DssLoad:
    """One OpenDSS load (or generator) and where its kW/kvar come from."""

    dss_name: str  #: e.g. ``Load.ld_671``
    source: str  #: mRID of the EnergyConsumer / EnergyConsumerPhase / generator it follows


@attrs.define
class DssCircuit:
    """A converted model: the DSS script and the mappings between DSS and CIM objects."""

    script: str
    frequency_hz: float
    bus_of_node: dict[str, str]  #: node mRID -> DSS bus name
    node_of_bus: dict[str, str]  #: DSS bus name -> node mRID
    node_names: dict[str, str]  #: node mRID -> result name (lower-case CIM name, fallback mRID)
    elements: dict[str, list[str]]  #: equipment mRID -> DSS element names ("Line.x", "Transformer.y")
    element_kind: dict[str, str]  #: equipment mRID -> CIM class name
    loads: list[DssLoad]
    generators: list[DssLoad]
    switches: dict[str, str]  #: switch mRID -> DSS element name
    taps: dict[str, tuple[str, int]]  #: RatioTapChanger mRID -> (DSS transformer name, winding)
    capacitors: dict[str, str]  #: LinearShuntCompensator mRID -> DSS capacitor name
    source: str | None  #: mRID of the EnergySource that is the circuit's Vsource
    source_base_kv: float = 0.0


class _Converter:
    def __init__(self, model: NetworkModel, frequency_hz: float, tap_control: bool) -> None:
        self.model = model
        self.f = frequency_hz
        self.tap_control = tap_control
        self.lines: list[str] = []
        self.bus_of_node: dict[str, str] = {}
        self.node_of_bus: dict[str, str] = {}
        self.node_names: dict[str, str] = {}
        self.elements: dict[str, list[str]] = defaultdict(list)
        self.kind: dict[str, str] = {}
        self.loads: list[DssLoad] = []
        self.generators: list[DssLoad] = []
        self.switches: dict[str, str] = {}
        self.taps: dict[str, tuple[str, int]] = {}
        self.capacitors: dict[str, str] = {}
        self.used_names: dict[str, set[str]] = defaultdict(set)
        self.linecodes: dict[str, str] = {}
        self.base_kvs: set[float] = set()
        self.node_phases: dict[str, set[str]] = defaultdict(set)
        self.line_phases: dict[str, list[str]] = {}

    # -- names -----------------------------------------------------------------------------

    def _name(self, cls: str, obj) -> str:
        base = _safe(obj.name) if obj.name else _safe(obj.mrid)
        name = base
        if name in self.used_names[cls]:
            name = f"{base}_{_safe(obj.mrid)}"
        self.used_names[cls].add(name)
        return name

    def _bus_names(self) -> None:
        counts: dict[str, int] = defaultdict(int)
        nodes = self.model.node_ids()
        for node in nodes:
            obj = self.model.objects.get(node)
            counts[_safe(obj.name) if obj is not None and obj.name else ""] += 1
        for node in nodes:
            obj = self.model.objects.get(node)
            name = obj.name if obj is not None and obj.name else ""
            bus = _safe(name) if name and counts[_safe(name)] == 1 else _safe(node)
            while bus in self.node_of_bus:
                bus += "_"
            self.bus_of_node[node] = bus
            self.node_of_bus[bus] = node
            self.node_names[node] = name.lower() if name else node

    def _bus(self, terminal: Terminal, equipment) -> str:
        node = self.model.node_of(terminal)
        if node is None:
            raise ConversionError(f"terminal {terminal.mrid!r} of {_label(equipment)} is not connected to a node")
        return self.bus_of_node[node]

    # -- phases ----------------------------------------------------------------------------

    def _collect_phases(self) -> None:
        """Phases present at each node, from lines (phase children) and transformer ends."""
        children: dict[str, list[ACLineSegmentPhase]] = defaultdict(list)
        for child in self.model.of_type(ACLineSegmentPhase):
            children[child.line].append(child)
        for line in self.model.of_type(ACLineSegment):
            if line.mrid in children:
                phases = [c.phase for c in sorted(children[line.mrid], key=lambda c: c.sequence_number)]
                phases = [p for code in phases for p in phase_list(code)]
            else:
                terminals = self.model.terminals(line)
                phases = phase_list(terminals[0].phases if terminals else line.phases)
            self.line_phases[line.mrid] = phases
            for terminal in self.model.terminals(line):
                node = self.model.node_of(terminal)
                if node:
                    self.node_phases[node].update(_live(phases))
        for end in self.model.of_type(PowerTransformerEnd):
            if end.terminal and end.terminal in self.model:
                terminal = self.model.get(end.terminal, Terminal)
                node = self.model.node_of(terminal)
                if node:
                    self.node_phases[node].update(_live(phase_list(end.phases or terminal.phases)))

    def _terminal_phases(self, terminal: Terminal, equipment) -> list[str]:
        """Phases of a terminal, restricted to the phases that exist at its node (when known)."""
        phases = _live(phase_list(terminal.phases or equipment.phases))
        node = self.model.node_of(terminal)
        known = self.node_phases.get(node) if node else None
        if known:
            restricted = [p for p in phases if p in known]
            if restricted:
                return restricted
        return phases

    # -- voltages --------------------------------------------------------------------------

    def _kv(self, obj, fallback: float | None = None) -> float:
        kv = self.model.nominal_kv(obj)
        if kv:
            return kv
        for attr in ("nominal_kv", "rated_u_kv"):
            value = getattr(obj, attr, 0.0)
            if value:
                return value
        for terminal_id in getattr(obj, "terminals", ()):
            terminal = self.model.get(terminal_id, Terminal)
            node = self.model.node_of(terminal)
            if node is None:
                continue
            node_obj = self.model.objects.get(node)
            kv = self.model.nominal_kv(node_obj) if node_obj is not None else None
            if kv:
                return kv
            tn = getattr(node_obj, "topological_node", None)
            if tn and tn in self.model:
                kv = self.model.nominal_kv(self.model.get(tn))
                if kv:
                    return kv
        if fallback:
            return fallback
        raise ConversionError(f"no nominal voltage for {_label(obj)} (set its BaseVoltage)")

    def _add_base(self, kv: float) -> None:
        """Add a voltage base unless one within 2 % exists (2.4 kV * sqrt(3) is the 4.16 kV base)."""
        if kv > 0 and not any(abs(kv - b) / b < 0.02 for b in self.base_kvs):
            self.base_kvs.add(kv)

    # -- conversion ------------------------------------------------------------------------

    def run(self) -> DssCircuit:
        model = self.model
        self._bus_names()
        self._collect_phases()
        for bv in model.of_type(BaseVoltage):
            if bv.nominal_kv:
                self.base_kvs.add(bv.nominal_kv)
        sources = [s for s in model.of_type(EnergySource) if s.in_service]
        if not sources:
            raise ConversionError(f"model {model.name!r} has no in-service EnergySource")
        out = self.lines
        out.append("Clear")
        out.append(f"Set DefaultBaseFrequency={_fmt(self.f)}")
        first = sources[0]
        out.append(self._source(first, circuit=True))
        for source in sources[1:]:
            out.append(self._source(source, circuit=False))
        for line in model.of_type(ACLineSegment):
            if line.in_service:
                self._line(line)
        for switch in model.of_type(Switch):
            if switch.in_service:
                self._switch(switch)
        for transformer in model.of_type(PowerTransformer):
            if transformer.in_service:
                self._transformer(transformer)
        for consumer in model.of_type(EnergyConsumer):
            if consumer.in_service:
                self._consumer(consumer)
        for shunt in model.of_type(LinearShuntCompensator):
            if shunt.in_service:
                self._shunt(shunt)
        for gen in [*model.of_type(PowerElectronicsConnection), *model.of_type(SynchronousMachine)]:
            if gen.in_service:
                self._generator(gen)
        bases = ", ".join(_fmt(kv) for kv in sorted(self.base_kvs, reverse=True))
        out.append(f"Set VoltageBases=[{bases}]")
        out.append("CalcVoltageBases")
        out.append(f"Set ControlMode={'STATIC' if self.tap_control else 'OFF'}")
        out.append("Set MaxIterations=50")
        return DssCircuit(
            script="\n".join(out) + "\n",
            frequency_hz=self.f,
            bus_of_node=self.bus_of_node,
            node_of_bus=self.node_of_bus,
            node_names=self.node_names,
            elements=dict(self.elements),
            element_kind=self.kind,
            loads=self.loads,
            generators=self.generators,
            switches=self.switches,
            taps=self.taps,
            capacitors=self.capacitors,
            source=first.mrid,
            source_base_kv=self._kv(first),
        )

    def _source(self, source: EnergySource, circuit: bool) -> str:
        terminals = self.model.terminals(source)
        if not terminals:
            raise ConversionError(f"{_label(source)} has no terminal")
        bus = self._bus(terminals[0], source)
        # a source keeps its own phases (a single-phase tap at its node does not make it single-phase)
        phases = _live(phase_list(terminals[0].phases or source.phases)) or ["A", "B", "C"]
        kv = self._kv(source)
        self._add_base(kv)
        pu = source.voltage_kv / kv if source.voltage_kv else 1.0
        r1, x1 = source.r_ohm, source.x_ohm
        if abs(complex(r1, x1)) < 1e-9:
            r1, x1 = 1e-6, 1e-5  # an ideal source: tiny Thevenin impedance
        r0, x0 = source.r0_ohm, source.x0_ohm
        if abs(complex(r0, x0)) < 1e-9:
            r0, x0 = r1, x1
        name = self._name("vsource", source)
        head = f"New Circuit.{name}" if circuit else f"New Vsource.{name}"
        element = "Vsource.source" if circuit else f"Vsource.{name}"
        self.elements[source.mrid].append(element)
        self.kind[source.mrid] = type(source).__name__
        return (
            f"{head} bus1={bus}{_nodes(phases)} phases={len(phases)} basekv={_fmt(kv)} pu={_fmt(pu)} "
            f"angle={_fmt(source.voltage_angle_deg)} Z1=[{_fmt(r1)}, {_fmt(x1)}] Z0=[{_fmt(r0)}, {_fmt(x0)}]"
        )

    def _linecode(self, line: ACLineSegment, phases: list[str]) -> tuple[str, int]:
        """A linecode for the line's per-length impedance: (name, number of phase conductors)."""
        impedance = self.model.get(line.per_length_impedance)
        live = _live(phases)
        key = f"{impedance.mrid}/{len(live)}/{''.join(phases)}"
        if key in self.linecodes:
            return self.linecodes[key], len(live)
        name = self._name("linecode", impedance)
        self.linecodes[key] = name
        if isinstance(impedance, PerLengthPhaseImpedance):
            z, b = impedance.matrices()
            n = impedance.conductor_count
            neutral = None
            if n == len(phases) and "N" in phases:
                neutral = phases.index("N") + 1
            elif n != len(live):
                raise ConversionError(
                    f"{_label(line)}: impedance {impedance.mrid!r} has {n} conductors but the line has phases {''.join(phases)}"
                )
            to_nf = 1e3 / (2 * math.pi * self.f)  # µS -> nF
            rows_r = " | ".join(" ".join(_fmt(z[i][j].real) for j in range(i + 1)) for i in range(n))
            rows_x = " | ".join(" ".join(_fmt(z[i][j].imag) for j in range(i + 1)) for i in range(n))
            rows_c = " | ".join(" ".join(_fmt(b[i][j] * to_nf) for j in range(i + 1)) for i in range(n))
            text = (
                f"New Linecode.{name} nphases={n} units=km rmatrix=({rows_r}) xmatrix=({rows_x}) cmatrix=({rows_c})"
            )
            if neutral is not None:
                text += f" neutral={neutral} kron=yes"
            self.lines.append(text)
        elif isinstance(impedance, PerLengthSequenceImpedance):
            to_nf = 1e3 / (2 * math.pi * self.f)
            self.lines.append(
                f"New Linecode.{name} nphases={len(live)} units=km r1={_fmt(impedance.r_ohm_per_km)} "
                f"x1={_fmt(impedance.x_ohm_per_km)} r0={_fmt(impedance.r0_ohm_per_km or impedance.r_ohm_per_km)} "
                f"x0={_fmt(impedance.x0_ohm_per_km or impedance.x_ohm_per_km)} c1={_fmt(impedance.b_us_per_km * to_nf)} "
                f"c0={_fmt((impedance.b0_us_per_km or impedance.b_us_per_km) * to_nf)}"
            )
        else:
            raise ConversionError(f"{_label(line)}: {impedance!r} is not a per-length impedance")
        return name, len(live)

    def _line(self, line: ACLineSegment) -> None:
        terminals = self.model.terminals(line)
        if len(terminals) != 2:
            raise ConversionError(f"{_label(line)} has {len(terminals)} terminals, expected 2")
        phases = self.line_phases.get(line.mrid) or phase_list(line.phases)
        live = _live(phases)
        if not live:
            raise ConversionError(f"{_label(line)} has no phases")
        bus1, bus2 = (self._bus(t, line) for t in terminals)
        name = self._name("line", line)
        length = line.length_km if line.length_km and line.length_km > 0 else 0.0
        text = f"New Line.{name} bus1={bus1}{_nodes(live)} bus2={bus2}{_nodes(live)} phases={len(live)}"
        if line.per_length_impedance:
            code, _ = self._linecode(line, phases)
            text += f" linecode={code} length={_fmt(length or 1e-3)} units=km"
        elif line.r_ohm is not None or line.x_ohm is not None:
            per = length or 1.0
            r1, x1 = (line.r_ohm or 0.0) / per, (line.x_ohm or 0.0) / per
            r0 = (line.r0_ohm if line.r0_ohm is not None else line.r_ohm or 0.0) / per
            x0 = (line.x0_ohm if line.x0_ohm is not None else line.x_ohm or 0.0) / per
            to_nf = 1e3 / (2 * math.pi * self.f)
            c1 = (line.b_us or 0.0) / per * to_nf
            c0 = (line.b0_us if line.b0_us is not None else line.b_us or 0.0) / per * to_nf
            if abs(complex(r1, x1)) < 1e-12:
                r1 = r0 = 1e-6
            text += (
                f" r1={_fmt(r1)} x1={_fmt(x1)} r0={_fmt(r0)} x0={_fmt(x0)} c1={_fmt(c1)} c0={_fmt(c0)}"
                + (f" length={_fmt(length)} units=km" if length else " length=1 units=none")
            )
        else:
            raise ConversionError(f"{_label(line)} has neither a per-length impedance nor r/x")
        if line.max_i_ka:
            text += f" normamps={_fmt(line.max_i_ka * 1000)} emergamps={_fmt(line.max_i_ka * 1000)}"
        self.lines.append(text)
        self.elements[line.mrid].append(f"Line.{name}")
        self.kind[line.mrid] = type(line).__name__

    def _switch(self, switch: Switch) -> None:
        terminals = self.model.terminals(switch)
        if len(terminals) != 2:
            raise ConversionError(f"{_label(switch)} has {len(terminals)} terminals, expected 2")
        phases = self._terminal_phases(terminals[0], switch)
        bus1, bus2 = (self._bus(t, switch) for t in terminals)
        name = self._name("line", switch)
        text = f"New Line.{name} bus1={bus1}{_nodes(phases)} bus2={bus2}{_nodes(phases)} phases={len(phases)} switch=yes r1=1e-4 r0=1e-4 x1=0 x0=0 c1=0 c0=0"
        if switch.rated_current_a:
            text += f" normamps={_fmt(switch.rated_current_a)} emergamps={_fmt(switch.rated_current_a)}"
        self.lines.append(text)
        if switch.open:
            self.lines.append(f"Open Line.{name} 1")
        self.elements[switch.mrid].append(f"Line.{name}")
        self.kind[switch.mrid] = type(switch).__name__
        self.switches[switch.mrid] = f"Line.{name}"

    # -- transformers ----------------------------------------------------------------------

    def _transformer(self, transformer: PowerTransformer) -> None:
        tanks = [t for t in self.model.of_type(TransformerTank) if t.power_transformer == transformer.mrid]
        all_ends = [e for e in self.model.of_type(PowerTransformerEnd) if e.power_transformer == transformer.mrid]
        groups: list[tuple[object, list[PowerTransformerEnd]]] = []
        if tanks:
            for tank in tanks:
                ends = [e for e in self.model.of_type(PowerTransformerEnd) if e.transformer_tank == tank.mrid]
                groups.append((tank, sorted(ends, key=lambda e: e.end_number)))
        else:
            groups.append((transformer, sorted(all_ends, key=lambda e: e.end_number)))
        self.kind[transformer.mrid] = type(transformer).__name__
        for owner, ends in groups:
            if len(ends) < 2:
                raise ConversionError(f"{_label(owner)} of {_label(transformer)} has {len(ends)} ends, expected 2 or 3")
            self._tank(transformer, owner, ends, single=bool(tanks))

    def _tank(self, transformer: PowerTransformer, owner, ends: list[PowerTransformerEnd], single: bool) -> None:
        name = self._name("transformer", owner if owner is not transformer else transformer)
        buses, conns, kvs, kvas = [], [], [], []
        nphases = None
        s_base = ends[0].rated_s_mva or 1.0
        x_pct: list[float] = []
        for end in ends:
            if not end.terminal or end.terminal not in self.model:
                raise ConversionError(f"{_label(end)} of {_label(transformer)} has no terminal")
            terminal = self.model.get(end.terminal, Terminal)
            bus = self._bus(terminal, transformer)
            phases = phase_list(end.phases) if (single or end.phases not in ("", "ABC", "ABCN")) else []
            if not phases:
                phases = phase_list(terminal.phases) or ["A", "B", "C"]
            live = _live(phases)
            connection = (end.connection or "Y").upper()
            if connection.startswith("D"):
                conn = "delta"
            else:
                conn = "wye"
            if len(live) == 1 and conn == "wye":
                node = PHASE_NODE[live[0]]
                spec = f"{bus}.0.{node}" if live[0] == "s2" else f"{bus}.{node}.0"
                n = 1
            elif len(live) == 2 and (single or conn == "delta" or connection == "I"):
                spec = f"{bus}{_nodes(live)}"  # one winding between two phases (e.g. s1-s2 or A-B)
                n = 1
                conn = "delta" if not live[0].startswith("s") else "wye"
            else:
                spec = f"{bus}{_nodes(live)}"
                n = len(live)
            if nphases is None:
                nphases = n
            buses.append(spec)
            conns.append(conn)
            kv = end.rated_u_kv or self._kv(end)
            kvs.append(kv)
            # OpenDSS voltage bases are line-to-line: a winding to neutral is sqrt(3) below its base
            self._add_base(kv * math.sqrt(3) if len(live) == 1 and n == 1 else kv)
            s = end.rated_s_mva or s_base
            kvas.append(s * 1000)
            x_pct.append(end.x_ohm / (kv * kv / s_base) * 100)
        # series impedance: sum of the end impedances referred to end 1 on the end-1 power base
        r_pct_total = sum(end.r_ohm / (kv * kv / s_base) * 100 for end, kv in zip(ends, kvs, strict=True))
        pct_rs = [r_pct_total / len(ends)] * len(ends)
        if len(ends) == 2:
            reactances = f"XHL={_fmt(max(x_pct[0] + x_pct[1], 1e-6))}"
        else:
            reactances = (
                f"XHL={_fmt(max(x_pct[0] + x_pct[1], 1e-6))} XHT={_fmt(max(x_pct[0] + x_pct[2], 1e-6))} "
                f"XLT={_fmt(max(x_pct[1] + x_pct[2], 1e-6))}"
            )
        first = ends[0]
        kv1 = kvs[0]
        noload = first.g_us * 1e-6 * kv1 * kv1 / s_base * 100 if first.g_us else 0.0
        imag = first.b_us * 1e-6 * kv1 * kv1 / s_base * 100 if first.b_us else 0.0
        text = (
            f"New Transformer.{name} phases={nphases} windings={len(ends)} buses=[{', '.join(buses)}] "
            f"conns=[{', '.join(conns)}] kVs=[{', '.join(_fmt(k) for k in kvs)}] "
            f"kVAs=[{', '.join(_fmt(k) for k in kvas)}] %Rs=[{', '.join(_fmt(r) for r in pct_rs)}] {reactances} "
            f"%noloadloss={_fmt(noload)} %imag={_fmt(imag)}"
        )
        self.lines.append(text)
        element = f"Transformer.{name}"
        self.elements[transformer.mrid].append(element)
        for winding, end in enumerate(ends, start=1):
            changer = self.model.tap_changer(end)
            if changer is None:
                continue
            self._tap(element, name, winding, end, changer)

    def _tap(self, element: str, name: str, winding: int, end: PowerTransformerEnd, changer: RatioTapChanger) -> None:
        incr = changer.step_voltage_increment_percent / 100.0
        low = 1.0 + (changer.low_step - changer.neutral_step) * incr
        high = 1.0 + (changer.high_step - changer.neutral_step) * incr
        steps = max(changer.high_step - changer.low_step, 1)
        self.lines.append(
            f"{element}.wdg={winding} MinTap={_fmt(min(low, high))} MaxTap={_fmt(max(low, high))} NumTaps={steps} "
            f"Tap={_fmt(tap_ratio(changer))}"
        )
        self.taps[changer.mrid] = (element, winding)
        if self.tap_control and changer.control_enabled and changer.target_u_kv:
            kv = end.rated_u_kv or 1.0
            pt_ratio = kv * 1000 / 120.0
            vreg = changer.target_u_kv * 1000 / pt_ratio
            band = (changer.target_deadband_kv or 0.0) * 1000 / pt_ratio or 2.0
            self.lines.append(
                f"New RegControl.{self._name('regcontrol', changer)} transformer={name} winding={winding} "
                f"vreg={_fmt(vreg)} band={_fmt(band)} ptratio={_fmt(pt_ratio)}"
            )

    # -- shunts and injections -------------------------------------------------------------

    def _model_code(self, consumer: EnergyConsumer) -> str:
        if not consumer.load_response or consumer.load_response not in self.model:
            return "model=1"
        lrc = self.model.get(consumer.load_response, LoadResponseCharacteristic)
        if lrc.exponent_model:
            return f"model=4 CVRwatts={_fmt(lrc.p_voltage_exponent)} CVRvars={_fmt(lrc.q_voltage_exponent)}"
        z, i, p = lrc.p_constant_impedance, lrc.p_constant_current, lrc.p_constant_power
        qz, qi, qp = lrc.q_constant_impedance, lrc.q_constant_current, lrc.q_constant_power
        if (z, i, p) == (qz, qi, qp):
            for fractions, code in (((0, 0, 1), 1), ((1, 0, 0), 2), ((0, 1, 0), 5)):
                if all(abs(a - b) < 1e-9 for a, b in zip((z, i, p), fractions, strict=True)):
                    return f"model={code}"
        return f"model=8 ZIPV=[{_fmt(z)}, {_fmt(i)}, {_fmt(p)}, {_fmt(qz)}, {_fmt(qi)}, {_fmt(qp)}, 0]"

    def _shunt_spec(self, bus: str, phases: list[str], delta: bool, kv_ll: float) -> tuple[str, int, float]:
        """``(bus spec, phases, kV)`` for a shunt element on ``phases`` (Y to neutral or D)."""
        split = any(p.startswith("s") for p in phases)
        if len(phases) == 1:
            if delta:
                pair = [phases[0], NEXT_PHASE[phases[0]]]
                return f"{bus}{_nodes(pair)}", 1, kv_ll
            return f"{bus}{_nodes(phases)}", 1, (kv_ll / 2 if split else kv_ll / math.sqrt(3))
        if len(phases) == 2 and split:
            return f"{bus}{_nodes(phases)}", 1, kv_ll
        if len(phases) == 2 and delta:
            return f"{bus}{_nodes(phases)}", 1, kv_ll
        return f"{bus}{_nodes(phases)}", len(phases), kv_ll  # 2- and 3-phase: phase-to-phase kV

    def _consumer(self, consumer: EnergyConsumer) -> None:
        terminals = self.model.terminals(consumer)
        if not terminals:
            raise ConversionError(f"{_label(consumer)} has no terminal")
        bus = self._bus(terminals[0], consumer)
        kv = self._kv(consumer)
        delta = consumer.connection.upper().startswith("D")
        code = self._model_code(consumer)
        children = [c for c in self.model.of_type(EnergyConsumerPhase) if c.consumer == consumer.mrid]
        self.kind[consumer.mrid] = type(consumer).__name__
        common = f"conn={'delta' if delta else 'wye'} {code} vminpu=0.7 vmaxpu=1.3"
        if children:
            for child in children:
                phases = _live(phase_list(child.phase))
                spec, n, load_kv = self._shunt_spec(bus, phases, delta, kv)
                name = self._name("load", child)
                self.lines.append(
                    f"New Load.{name} bus1={spec} phases={n} kV={_fmt(load_kv)} kW={_fmt(child.p_mw * 1000)} "
                    f"kvar={_fmt(child.q_mvar * 1000)} {common}"
                )
                self.loads.append(DssLoad(f"Load.{name}", child.mrid))
                self.elements[consumer.mrid].append(f"Load.{name}")
        else:
            phases = self._terminal_phases(terminals[0], consumer)
            spec, n, load_kv = self._shunt_spec(bus, phases, delta, kv)
            name = self._name("load", consumer)
            self.lines.append(
                f"New Load.{name} bus1={spec} phases={n} kV={_fmt(load_kv)} kW={_fmt(consumer.p_mw * 1000)} "
                f"kvar={_fmt(consumer.q_mvar * 1000)} {common}"
            )
            self.loads.append(DssLoad(f"Load.{name}", consumer.mrid))
            self.elements[consumer.mrid].append(f"Load.{name}")

    def _shunt(self, shunt: LinearShuntCompensator) -> None:
        terminals = self.model.terminals(shunt)
        if not terminals:
            raise ConversionError(f"{_label(shunt)} has no terminal")
        bus = self._bus(terminals[0], shunt)
        phases = self._terminal_phases(terminals[0], shunt)
        delta = shunt.connection.upper().startswith("D")
        nominal = shunt.nominal_kv or self._kv(shunt)
        # CIM nomU of a single-phase wye bank is its phase-to-neutral voltage
        kv_ll = nominal * math.sqrt(3) if len(phases) == 1 and not delta and not phases[0].startswith("s") else nominal
        spec, n, kv = self._shunt_spec(bus, phases, delta, kv_ll)
        kvar_step = shunt.b_per_section_us * 1e-3 * nominal * nominal
        steps = max(int(shunt.maximum_sections), 1)
        name = self._name("capacitor", shunt)
        states = capacitor_states(shunt)
        self.lines.append(
            f"New Capacitor.{name} bus1={spec} phases={n} kV={_fmt(kv)} conn={'delta' if delta else 'wye'} "
            f"numsteps={steps} kvar=[{', '.join(_fmt(kvar_step) for _ in range(steps))}] states=[{states}]"
        )
        self.capacitors[shunt.mrid] = f"Capacitor.{name}"
        self.elements[shunt.mrid].append(f"Capacitor.{name}")
        self.kind[shunt.mrid] = type(shunt).__name__

    def _generator(self, gen: ConductingEquipment) -> None:
        terminals = self.model.terminals(gen)
        if not terminals:
            raise ConversionError(f"{_label(gen)} has no terminal")
        bus = self._bus(terminals[0], gen)
        phases = self._terminal_phases(terminals[0], gen)
        kv = self._kv(gen)
        spec, n, gen_kv = self._shunt_spec(bus, phases, False, kv)
        name = self._name("generator", gen)
        self.lines.append(
            f"New Generator.{name} bus1={spec} phases={n} kV={_fmt(gen_kv)} kW={_fmt(gen.p_mw * 1000)} "
            f"kvar={_fmt(gen.q_mvar * 1000)} model=1 vminpu=0.7 vmaxpu=1.3"
        )
        self.generators.append(DssLoad(f"Generator.{name}", gen.mrid))
        self.elements[gen.mrid].append(f"Generator.{name}")
        self.kind[gen.mrid] = type(gen).__name__


def tap_ratio(changer: RatioTapChanger) -> float:
    """Per-unit ratio of the tapped winding at the changer's actual ``step``."""
    return 1.0 + (changer.step - changer.neutral_step) * changer.step_voltage_increment_percent / 100.0


def capacitor_states(shunt: LinearShuntCompensator) -> str:
    steps = max(int(shunt.maximum_sections), 1)
    on = max(0, min(steps, int(round(shunt.sections))))
    return ", ".join("1" if i < on else "0" for i in range(steps))


def convert(model: NetworkModel, *, frequency_hz: float = 60.0, tap_control: bool = False) -> DssCircuit:
    """Convert ``model`` to an OpenDSS circuit.

    :param frequency_hz: base frequency (only used to turn line susceptances into capacitances and
        back, so results do not depend on it).
    :param tap_control: add an OpenDSS ``RegControl`` for each RatioTapChanger with
        ``control_enabled`` and a target voltage (OpenDSS then moves the taps); by default taps are
        fixed at their ``step`` (the measured position in a DMS).
    :raises ConversionError: naming the object that cannot be converted.
    """
    return _Converter(model, frequency_hz, tap_control).run()


def to_dss(model: NetworkModel, **kwargs) -> str:
    """The OpenDSS script of ``model`` (see :func:`convert`)."""
    return convert(model, **kwargs).script
