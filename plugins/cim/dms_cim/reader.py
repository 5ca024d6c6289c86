"""CIM RDF/XML import: one file, several profile files (EQ/SSH/TP/SV) or a zip of them."""

from __future__ import annotations

import collections
import io
import logging
import math
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote

import attrs
from lxml import etree

from dms_kernel.model import NetworkModel
from dms_kernel.model import elements as el

from .schema import (
    CIM16_NS,
    CLASSES,
    CONSUMED,
    MD_NS,
    PARENT_LINKS,
    RDF_NS,
    READ_CLASSES,
    SCALES,
    scale,
    to_model,
)
from .errors import CimError

__all__ = ["read_cim", "CimError"]

log = logging.getLogger("dms_cim")

_RDF_ID = f"{{{RDF_NS}}}ID"
_RDF_ABOUT = f"{{{RDF_NS}}}about"
_RDF_RESOURCE = f"{{{RDF_NS}}}resource"
_RDF_ROOT = f"{{{RDF_NS}}}RDF"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True)
_SUFFIXES = (".xml", ".rdf")


@attrs.define(frozen=True)
class Ref:
    """An ``rdf:resource`` reference (normalised id)."""

    id: str


@attrs.define
class Record:
    """One RDF object, merged over all files that describe it."""

    cls: str
    units: str
    source: str
    props: dict[str, list[str | Ref]] = attrs.field(factory=dict)

    def first(self, prop: str) -> str | Ref | None:
        values = self.props.get(prop)
        return values[0] if values else None

    def text(self, prop: str) -> str | None:
        value = self.first(prop)
        return value.id if isinstance(value, Ref) else value

    def ref(self, prop: str) -> str | None:
        value = self.first(prop)
        return value.id if isinstance(value, Ref) else None

    def refs(self, prop: str) -> list[str]:
        return [v.id for v in self.props.get(prop, ()) if isinstance(v, Ref)]

    def number(self, prop: str, kind: str = "float", default: float | None = None) -> float | None:
        text = self.text(prop)
        if text is None:
            return default
        try:
            return to_model(kind, text, self.units)  # type: ignore[return-value]
        except ValueError:
            raise CimError(f"{self.source}: {self.cls}: {prop} is not a number: {text!r}") from None


def normalise_id(value: str) -> str:
    """``#_x`` -> ``_x``; ``urn:uuid:X`` -> ``X``; percent-escapes decoded."""
    value = value.strip()
    if "#" in value:
        value = value.rsplit("#", 1)[1]
    value = unquote(value)
    if value.lower().startswith("urn:uuid:"):
        value = value[9:]
    return value


def _resource(value: str) -> str | Ref:
    """An ``rdf:resource``: a reference, or an enumeration literal (``...#WindingConnection.Y``)."""
    if value.startswith("#") or value.lower().startswith("urn:"):
        return Ref(normalise_id(value))
    fragment = value.rsplit("#", 1)[-1]
    if "#" in value and "." in fragment:
        return fragment
    return Ref(normalise_id(value))


# -- reading files ------------------------------------------------------------------------------


def _expand(source: object) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of every XML document in ``source`` (paths, zip files, lists of them)."""
    if isinstance(source, (list, tuple)):
        documents = []
        for item in source:
            documents.extend(_expand(item))
        return documents
    if isinstance(source, bytes):
        return [("<bytes>", source)]
    path = Path(os.fspath(source))  # type: ignore[call-overload]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CimError(f"cannot read CIM file {path}: {error.strerror or error}") from None
    if path.suffix.lower() == ".zip" or data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.namelist() if m.lower().endswith(_SUFFIXES)]
                if not members:
                    raise CimError(f"{path}: zip file holds no .xml/.rdf file")
                return [(f"{path}:{m}", archive.read(m)) for m in sorted(members)]
        except zipfile.BadZipFile as error:
            raise CimError(f"{path}: not a readable zip file: {error}") from None
    return [(str(path), data)]


def _units_of(root: etree._Element) -> str:
    namespaces = set(root.nsmap.values())
    if CIM16_NS in namespaces or any("CIM-schema-cim1" in ns for ns in namespaces if ns):
        return "cgmes"
    for child in root:
        if isinstance(child.tag, str) and child.tag == f"{{{MD_NS}}}FullModel":
            return "cgmes"
    return "si"


def _parse(name: str, data: bytes, records: dict[str, Record]) -> None:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise CimError(f"{name}: not well-formed XML: {error}") from None
    if root.tag != _RDF_ROOT:
        raise CimError(f"{name}: not a CIM RDF/XML file (root element is {etree.QName(root).localname!r}, expected rdf:RDF)")
    units = _units_of(root)
    for index, element in enumerate(root):
        if not isinstance(element.tag, str):
            continue
        cls = etree.QName(element).localname
        defining = element.get(_RDF_ID)
        key = normalise_id(defining or element.get(_RDF_ABOUT) or "") or f"{name}#{index}"
        record = records.get(key)
        if record is None:
            record = records[key] = Record(cls, units, name)
        elif defining is not None:
            record.cls, record.source = cls, name
        for child in element:
            if not isinstance(child.tag, str):
                continue
            prop = etree.QName(child).localname
            resource = child.get(_RDF_RESOURCE)
            value: str | Ref = _resource(resource) if resource is not None else (child.text or "").strip()
            record.props.setdefault(prop, []).append(value)


# -- building the model ---------------------------------------------------------------------------


class _Builder:
    def __init__(self, records: dict[str, Record], name: str) -> None:
        self.records = records
        self.model = NetworkModel(name)
        self.mrid_of = {key: (rec.text("IdentifiedObject.mRID") or key) for key, rec in records.items()}
        self.by_mrid = {self.mrid_of[key]: rec for key, rec in records.items()}
        self.explicit_phases: set[str] = set()
        self.tank_end_phases: dict[str, str] = {}

    def resolve(self, key: str | None) -> str | None:
        return None if key is None else self.mrid_of.get(key, key)

    # objects ---------------------------------------------------------------------------------

    def create(self) -> None:
        unknown = self.model.unknown_classes
        for key, rec in self.records.items():
            cls = READ_CLASSES.get(rec.cls)
            if cls is None:
                if rec.cls not in CONSUMED:
                    unknown[rec.cls] += 1
                continue
            if cls is el.Terminal:
                target = self.by_mrid.get(self.resolve(rec.ref("Terminal.ConductingEquipment")) or "")
                if target is not None and target.cls not in READ_CLASSES:
                    continue  # terminal of skipped (unknown) equipment
            obj = cls(self.mrid_of[key])
            self.apply(obj, rec, CLASSES[cls][1])
            if rec.cls == "TransformerTankEnd":
                obj.transformer_tank = self.resolve(rec.ref("TransformerTankEnd.TransformerTank"))
                phases = rec.text("TransformerTankEnd.orderedPhases")
                if phases:
                    obj.phases = phases.rsplit(".", 1)[-1]
                    self.tank_end_phases[obj.mrid] = obj.phases
            if cls is el.Terminal and rec.text("Terminal.phases"):
                self.explicit_phases.add(obj.mrid)
            self.model.add(obj)

    def apply(self, obj: object, rec: Record, props: Sequence[tuple[str, str, str]]) -> None:
        for prop, field, kind in props:
            value = rec.first(prop)
            if value is None:
                continue
            if kind == "ref":
                if isinstance(value, Ref):
                    setattr(obj, field, self.resolve(value.id))
                continue
            text = value.id if isinstance(value, Ref) else value
            try:
                setattr(obj, field, to_model(kind, text, rec.units))
            except ValueError:
                raise CimError(
                    f"{rec.source}: {rec.cls} {getattr(obj, 'mrid', '?')!r}: {prop} has a bad value {text!r}"
                ) from None

    def consumed(self, cls: str) -> Iterable[tuple[str, Record]]:
        return ((k, r) for k, r in self.records.items() if r.cls == cls)

    # details ---------------------------------------------------------------------------------

    def impedance_matrices(self) -> None:
        for _, rec in self.consumed("PhaseImpedanceData"):
            owner = self.model.objects.get(self.resolve(rec.ref("PhaseImpedanceData.PhaseImpedance")) or "")
            if not isinstance(owner, el.PerLengthPhaseImpedance):
                continue
            row = int(rec.number("PhaseImpedanceData.row", "int", 0) or rec.number("PhaseImpedanceData.sequenceNumber", "int", 1))
            col = int(rec.number("PhaseImpedanceData.column", "int", row))
            row, col = max(row, col), min(row, col)
            owner.entries.append(
                el.PhaseImpedanceEntry(
                    row, col,
                    rec.number("PhaseImpedanceData.r", "ohm_pl", 0.0),
                    rec.number("PhaseImpedanceData.x", "ohm_pl", 0.0),
                    rec.number("PhaseImpedanceData.b", "S_pl", 0.0),
                )
            )
        for impedance in self.model.of_type(el.PerLengthPhaseImpedance):
            impedance.entries.sort(key=lambda e: (e.row, e.col))

    def locations(self) -> None:
        points: dict[str, list[tuple[int, float, float]]] = collections.defaultdict(list)
        for _, rec in self.consumed("PositionPoint"):
            location = self.resolve(rec.ref("PositionPoint.Location"))
            if location:
                points[location].append((
                    int(rec.number("PositionPoint.sequenceNumber", "int", 0)),
                    rec.number("PositionPoint.xPosition", "float", 0.0),
                    rec.number("PositionPoint.yPosition", "float", 0.0),
                ))
        for location in self.model.of_type(el.Location):
            location.points = [(x, y) for _, x, y in sorted(points.get(location.mrid, ()), key=lambda p: p[0])]
            rec = self.by_mrid[location.mrid]
            crs = self.by_mrid.get(self.resolve(rec.ref("Location.CoordinateSystem")) or "")
            if crs is not None:
                location.coordinate_system = crs.text("CoordinateSystem.crsUrn") or crs.text("IdentifiedObject.name") or ""

    def tap_controls(self) -> None:
        for changer in self.model.of_type(el.RatioTapChanger):
            rec = self.by_mrid[changer.mrid]
            control = self.by_mrid.get(self.resolve(rec.ref("TapChanger.TapChangerControl")) or "")
            if control is None:
                continue
            pt_ratio = rec.number("TapChanger.ptRatio", "float", None) or 1.0
            multiplier = control.text("RegulatingControl.targetValueUnitMultiplier")
            if multiplier:
                to_kv = 10.0 ** _MULTIPLIERS.get(multiplier.rsplit(".", 1)[-1], 0) / 1000.0
            else:
                to_kv = scale(1.0, *SCALES[control.units]["V"])
            for prop, field in (("RegulatingControl.targetValue", "target_u_kv"), ("RegulatingControl.targetDeadband", "target_deadband_kv")):
                value = control.number(prop, "float", None)
                if value is not None:
                    setattr(changer, field, value * pt_ratio * to_kv)

    def transformers(self) -> None:
        ends = self.model.of_type(el.PowerTransformerEnd)
        tanks = {t.mrid: t for t in self.model.of_type(el.TransformerTank)}
        for end in ends:
            if end.transformer_tank and end.power_transformer is None and end.transformer_tank in tanks:
                end.power_transformer = tanks[end.transformer_tank].power_transformer
        self._tank_info(ends, tanks)
        # TransformerMeshImpedance (PowerTransformerEnd style, as OpenDSS writes 3-phase units)
        meshes: dict[str, list[tuple[str, str, Record]]] = collections.defaultdict(list)
        by_mrid = {e.mrid: e for e in ends}
        for _, rec in self.consumed("TransformerMeshImpedance"):
            a = self.resolve(rec.ref("TransformerMeshImpedance.FromTransformerEnd"))
            b = self.resolve(rec.ref("TransformerMeshImpedance.ToTransformerEnd"))
            if a in by_mrid and b in by_mrid:
                meshes[by_mrid[a].power_transformer or a].append((a, b, rec))
        for items in meshes.values():
            group = sorted({e for a, b, _ in items for e in (a, b)}, key=lambda m: by_mrid[m].end_number)
            pairs = {}
            for a, b, rec in items:
                r = rec.number("TransformerMeshImpedance.r", "ohm", 0.0)
                x = rec.number("TransformerMeshImpedance.x", "ohm", 0.0)
                pairs[(a, b)] = (r, x)
                pairs[(b, a)] = (r * _ratio2(by_mrid[b], by_mrid[a]), x * _ratio2(by_mrid[b], by_mrid[a]))
            group_ends = [by_mrid[m] for m in group]
            if len(group) == 2:
                a, b, rec = items[0]
                end_a, end_b = by_mrid[a], by_mrid[b]
                r, x = pairs[(a, b)]
                if not any(e.r_ohm for e in group_ends):
                    end_a.r_ohm = r
                end_a.x_ohm, end_b.x_ohm = x, 0.0
                for prop, field in (("TransformerMeshImpedance.r0", "r0_ohm"), ("TransformerMeshImpedance.x0", "x0_ohm")):
                    value = rec.number(prop, "ohm", None)
                    if value is not None:
                        setattr(end_a, field, value)
            elif len(group) == 3 and len(pairs) == 6:
                e1, e2, e3 = group
                rs = _star(pairs[(e1, e2)][0], pairs[(e1, e3)][0], pairs[(e2, e3)][0] * _ratio2(by_mrid[e1], by_mrid[e2]))
                xs = _star(pairs[(e1, e2)][1], pairs[(e1, e3)][1], pairs[(e2, e3)][1] * _ratio2(by_mrid[e1], by_mrid[e2]))
                for end, r, x in zip(group_ends, rs, xs):
                    factor = _ratio2(end, group_ends[0])
                    end.r_ohm, end.x_ohm = r * factor, x * factor
        for _, rec in self.consumed("TransformerCoreAdmittance"):
            end = by_mrid.get(self.resolve(rec.ref("TransformerCoreAdmittance.TransformerEnd")) or "")
            if end is not None:
                end.g_us = rec.number("TransformerCoreAdmittance.g", "S", 0.0)
                end.b_us = rec.number("TransformerCoreAdmittance.b", "S", 0.0)

    def _tank_info(self, ends: list[el.PowerTransformerEnd], tanks: dict[str, el.TransformerTank]) -> None:
        """Ratings and impedances of tank ends from TransformerTankInfo / EndInfo / tests."""
        end_infos: dict[str, dict[int, str]] = collections.defaultdict(dict)
        for key, rec in self.consumed("TransformerEndInfo"):
            info = rec.ref("TransformerEndInfo.TransformerTankInfo")
            if info:
                end_infos[info][int(rec.number("TransformerEndInfo.endNumber", "int", 1))] = key
        sc_tests: dict[str, list[Record]] = collections.defaultdict(list)
        for _, rec in self.consumed("ShortCircuitTest"):
            energised = rec.ref("ShortCircuitTest.EnergisedEnd")
            if energised:
                sc_tests[energised].append(rec)
        nl_tests = {rec.ref("NoLoadTest.EnergisedEnd"): rec for _, rec in self.consumed("NoLoadTest")}
        tank_ends: dict[str, list[el.PowerTransformerEnd]] = collections.defaultdict(list)
        for end in ends:
            if end.transformer_tank in tanks:
                tank_ends[end.transformer_tank].append(end)
        for tank_id, group in tank_ends.items():
            tank_rec = self.by_mrid[tank_id]
            info = tank_rec.ref("TransformerTank.TransformerTankInfo") or tank_rec.ref("PowerSystemResource.AssetDatasheet")
            if not info or info not in end_infos:
                continue
            group.sort(key=lambda e: e.end_number)
            info_of: dict[str, el.PowerTransformerEnd] = {}
            for end in group:
                key = end_infos[info].get(end.end_number)
                if key is None:
                    continue
                info_of[key] = end
                rec = self.records[key]
                end.rated_u_kv = rec.number("TransformerEndInfo.ratedU", "V", end.rated_u_kv)
                end.rated_s_mva = rec.number("TransformerEndInfo.ratedS", "P", end.rated_s_mva)
                end.r_ohm = rec.number("TransformerEndInfo.r", "ohm", end.r_ohm)
                end.phase_angle_clock = int(rec.number("TransformerEndInfo.phaseAngleClock", "int", end.phase_angle_clock))
                connection = rec.text("TransformerEndInfo.connectionKind")
                if connection:
                    end.connection = connection.rsplit(".", 1)[-1]
            # leakage reactance of each pair, referred to end 1 (or the first end)
            first = group[0]
            x_pair: dict[tuple[int, int], float] = {}
            for key, end_e in info_of.items():
                for test in sc_tests.get(key, ()):
                    for grounded in test.refs("ShortCircuitTest.GroundedEnds"):
                        end_g = info_of.get(grounded)
                        if end_g is None:
                            continue
                        z = test.number("ShortCircuitTest.leakageImpedance", "ohm", 0.0)
                        r = end_e.r_ohm + end_g.r_ohm * _ratio2(end_e, end_g)
                        x = math.sqrt(max(z * z - r * r, 0.0)) * _ratio2(first, end_e)
                        pair = tuple(sorted((end_e.end_number, end_g.end_number)))
                        x_pair[pair] = x  # type: ignore[index]
            numbers = [e.end_number for e in group]
            if len(group) == 2 and tuple(numbers) in x_pair:
                group[0].x_ohm, group[1].x_ohm = x_pair[tuple(numbers)], 0.0  # type: ignore[index]
            elif len(group) == 3:
                n1, n2, n3 = numbers
                if {(n1, n2), (n1, n3), (n2, n3)} <= x_pair.keys():
                    xs = _star(x_pair[(n1, n2)], x_pair[(n1, n3)], x_pair[(n2, n3)])
                    for end, x in zip(group, xs):
                        end.x_ohm = x * _ratio2(end, first)
            for key, end in info_of.items():
                test = nl_tests.get(key)
                if test is None:
                    continue
                u_kv = test.number("NoLoadTest.energisedEndVoltage", "V", None) or end.rated_u_kv
                s_mva = test.number("TransformerTest.basePower", "P", None) or end.rated_s_mva
                loss_mw = test.number("NoLoadTest.loss", "P", 0.0)
                current = test.number("NoLoadTest.excitingCurrent", "float", 0.0)
                if u_kv:
                    g = loss_mw / u_kv**2
                    y = current / 100.0 * s_mva / u_kv**2
                    end.g_us = g * 1e6
                    end.b_us = math.sqrt(max(y * y - g * g, 0.0)) * 1e6

    def current_limits(self) -> None:
        """``max_i_ka`` of lines: the smallest CurrentLimit of an OperationalLimitSet of the line or
        of one of its terminals (OpenDSS writes normal and emergency ratings; the normal one wins)."""
        owners: dict[str, list[str]] = collections.defaultdict(list)
        for key, rec in self.records.items():
            if rec.cls == "Terminal":
                for limit_set in rec.refs("ACDCTerminal.OperationalLimitSet"):
                    owners[limit_set].append(key)
        for key, rec in self.consumed("OperationalLimitSet"):
            owner = rec.ref("OperationalLimitSet.Equipment") or rec.ref("OperationalLimitSet.Terminal")
            if owner:
                owners[key].append(owner)
        for _, rec in self.consumed("CurrentLimit"):
            value = rec.number("CurrentLimit.value", "A", None)
            if value is None:
                continue
            for owner_key in owners.get(rec.ref("OperationalLimit.OperationalLimitSet") or "", ()):
                owner = self.model.objects.get(self.resolve(owner_key) or "")
                if isinstance(owner, el.Terminal):
                    owner = self.model.objects.get(owner.conducting_equipment)
                if isinstance(owner, el.ACLineSegment):
                    value_ka = value / 1000.0
                    owner.max_i_ka = value_ka if owner.max_i_ka is None else min(owner.max_i_ka, value_ka)

    def electronics(self) -> None:
        for connection in self.model.of_type(el.PowerElectronicsConnection):
            for unit in self.by_mrid[connection.mrid].refs("PowerElectronicsConnection.PowerElectronicsUnit"):
                obj = self.model.objects.get(self.resolve(unit) or "")
                if isinstance(obj, el.PowerElectronicsUnit):
                    obj.power_electronics_connection = connection.mrid

    def state(self) -> None:
        for _, rec in self.consumed("SvVoltage"):
            node = self.resolve(rec.ref("SvVoltage.TopologicalNode"))
            if node:
                self.model.state_voltages[node] = (
                    rec.number("SvVoltage.v", "V", 0.0),
                    rec.number("SvVoltage.angle", "float", 0.0),
                )

    # references and connectivity -----------------------------------------------------------------

    def fix_references(self) -> None:
        """References to objects present in the files but not modelled: follow a container
        upwards (Bay -> VoltageLevel, SubGeographicalRegion -> GeographicalRegion) or drop them."""
        for obj in self.model.objects.values():
            for prop, field, kind in CLASSES[type(obj)][1]:
                if kind != "ref":
                    continue
                target = getattr(obj, field)
                if not target or target in self.model.objects:
                    continue
                fixed = self._parent(target)
                if fixed is not target:
                    default = attrs.fields_dict(type(obj))[field].default
                    setattr(obj, field, fixed if fixed is not None else default)
            for field in ("transformer_tank",):
                target = getattr(obj, field, None)
                if isinstance(obj, (el.PowerTransformerEnd, el.PowerElectronicsUnit)) and target and target not in self.model.objects:
                    if target in self.by_mrid:
                        setattr(obj, field, None)

    def _parent(self, target: str) -> str | None:
        rec = self.by_mrid.get(target)
        if rec is None:
            return target  # missing everywhere: a dangling reference, reported by validate()
        for _ in range(8):
            link = PARENT_LINKS.get(rec.cls)
            parent = self.resolve(rec.ref(link)) if link else None
            if parent is None:
                return None
            if parent in self.model.objects:
                return parent
            rec = self.by_mrid.get(parent)
            if rec is None:
                return parent
        return None

    def connectivity(self) -> None:
        model = self.model
        equipment_terminals: dict[str, list[el.Terminal]] = collections.defaultdict(list)
        for terminal in model.of_type(el.Terminal):
            if terminal.conducting_equipment:
                equipment_terminals[terminal.conducting_equipment].append(terminal)
        phase_objects: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
        for phase in model.of_type(el.ACLineSegmentPhase):
            phase_objects[phase.line].append((phase.sequence_number, phase.phase))
        for index, phase in enumerate(model.of_type(el.EnergyConsumerPhase)):
            phase_objects[phase.consumer].append((index, phase.phase))
        for index, phase in enumerate(model.of_type(el.LinearShuntCompensatorPhase)):
            phase_objects[phase.shunt_compensator].append((index, phase.phase))
        end_phases: dict[str, str] = {}
        transformer_phases: dict[str, set[str]] = collections.defaultdict(set)
        for end in model.of_type(el.PowerTransformerEnd):
            if end.mrid in self.tank_end_phases:
                if end.terminal:
                    end_phases[end.terminal] = end.phases
                if end.end_number == 1 and end.power_transformer:
                    transformer_phases[end.power_transformer].update(_letters(end.phases))
        for equipment in model.of_type(el.ConductingEquipment):
            terminals = sorted(equipment_terminals.get(equipment.mrid, ()), key=lambda t: t.sequence_number)
            equipment.terminals = [t.mrid for t in terminals]
            derived = "ABC"
            if equipment.mrid in phase_objects:
                letters = [p for _, p in sorted(phase_objects[equipment.mrid])]
                derived = _join(letters)
                if getattr(equipment, "connection", "Y") == "D" and len(letters) == 1 and letters[0] in _DELTA_PAIR:
                    derived = _DELTA_PAIR[letters[0]]
            elif equipment.mrid in transformer_phases:
                derived = _join(sorted(transformer_phases[equipment.mrid], key=_PHASE_ORDER.index))
            explicit = [t for t in terminals if t.mrid in self.explicit_phases]
            if explicit and explicit[0] is terminals[0] and equipment.mrid not in transformer_phases:
                equipment.phases = explicit[0].phases
            else:
                equipment.phases = derived
            for terminal in terminals:
                if terminal.mrid not in self.explicit_phases:
                    terminal.phases = end_phases.get(terminal.mrid, equipment.phases)
        for end in model.of_type(el.PowerTransformerEnd):
            if end.mrid not in self.tank_end_phases and end.terminal in model.objects:
                end.phases = model.get(end.terminal, el.Terminal).phases
        model.invalidate()


_MULTIPLIERS = {"p": -12, "n": -9, "micro": -6, "m": -3, "c": -2, "d": -1, "none": 0, "da": 1, "h": 2, "k": 3, "M": 6, "G": 9, "T": 12}
_PHASE_ORDER = ["A", "B", "C", "s1", "s2", "s12", "N"]
_DELTA_PAIR = {"A": "AB", "B": "BC", "C": "AC"}


def _letters(phases: str) -> list[str]:
    out = []
    rest = phases
    while rest:
        for token in ("s12", "s1", "s2", "A", "B", "C", "N"):
            if rest.startswith(token):
                if token != "N":
                    out.append(token)
                rest = rest[len(token):]
                break
        else:
            rest = rest[1:]
    return out


def _join(letters: list[str]) -> str:
    main = [p for p in letters if p != "N"]
    return "".join(main) + ("N" if "N" in letters else "")


def _ratio2(a: el.PowerTransformerEnd, b: el.PowerTransformerEnd) -> float:
    """``(U_a / U_b)^2``: refers an impedance at end ``b`` to end ``a``."""
    if a.rated_u_kv and b.rated_u_kv:
        return (a.rated_u_kv / b.rated_u_kv) ** 2
    return 1.0


def _star(z12: float, z13: float, z23: float) -> tuple[float, float, float]:
    """Mesh -> star for three windings (all referred to one voltage)."""
    return (z12 + z13 - z23) / 2.0, (z12 + z23 - z13) / 2.0, (z13 + z23 - z12) / 2.0


def read_cim(source: object, *, name: str | None = None, validate: bool = True) -> NetworkModel:
    """Read a CIM RDF/XML model.

    :param source: a path to an ``.xml``/``.rdf`` file, a ``.zip`` of such files, or a list of
        paths (e.g. CGMES EQ, SSH, TP, SV files) merged by mRID.
    :param name: model name (default: the first file's stem).
    :param validate: check references (:meth:`NetworkModel.validate`).
    :raises CimError: unreadable or malformed file (naming the file).
    :raises ModelError: a dangling reference (naming the mRID and the referring object).
    """
    documents = _expand(source)
    if not documents:
        raise CimError("no CIM file given")
    records: dict[str, Record] = {}
    for doc_name, data in documents:
        _parse(doc_name, data, records)
    if name is None:
        first = source[0] if isinstance(source, (list, tuple)) and source else source
        name = Path(os.fspath(first)).stem if not isinstance(first, bytes) else "model"  # type: ignore[call-overload]
    builder = _Builder(records, name)
    builder.create()
    builder.impedance_matrices()
    builder.locations()
    builder.tap_controls()
    builder.transformers()
    builder.current_limits()
    builder.electronics()
    builder.state()
    builder.fix_references()
    builder.connectivity()
    model = builder.model
    if model.unknown_classes:
        skipped = ", ".join(f"{cls} {n}" for cls, n in sorted(model.unknown_classes.items()))
        log.info("CIM model %s: %d objects read; unknown classes skipped: %s", name, len(model), skipped)
    else:
        log.info("CIM model %s: %d objects read", name, len(model))
    if validate:
        model.validate()
    return model
