"""CIM RDF/XML export (trees built with lxml): the CIM100 distribution profile or CGMES 2.4.15."""

from __future__ import annotations

import math
import os
import uuid
import zipfile
from pathlib import Path
from urllib.parse import quote

from lxml import etree

from dms_kernel.model import NetworkModel
from dms_kernel.model import elements as el

from .schema import CIM16_NS, CIM100_NS, CLASSES, ENTSOE_NS, MD_NS, RDF_NS, SSH_PROPS, TP_PROPS, to_cim

__all__ = ["write_cim", "PROFILES"]

PROFILES = ("cim100", "cgmes")
_NAMESPACE = uuid.UUID("7b0f4f9e-5c6a-4e43-9a43-8f3f6c1d2e10")
_CGMES_PROFILES = {
    "EQ": "http://entsoe.eu/CIM/EquipmentCore/3/1",
    "SSH": "http://entsoe.eu/CIM/SteadyStateHypothesis/1/1",
    "TP": "http://entsoe.eu/CIM/Topology/4/1",
    "SV": "http://entsoe.eu/CIM/StateVariables/4/1",
}
_R = f"{{{RDF_NS}}}resource"


def _derived_id(*parts: str) -> str:
    """A stable UUID for objects without an mRID of their own (position points, info classes)."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def _is_uuid(value: str) -> bool:
    try:
        return len(value) == 36 and str(uuid.UUID(value)).lower() == value.lower()
    except ValueError:
        return False


class _Document:
    """RDF/XML output: one root per part (EQ/SSH/TP/SV in a split CGMES export, else one)."""

    def __init__(self, model: NetworkModel, profile: str, split: bool) -> None:
        self.model = model
        self.cgmes = profile == "cgmes"
        self.ns = CIM16_NS if self.cgmes else CIM100_NS
        self.units = "cgmes" if self.cgmes else "si"
        self.split = split
        self.roots: dict[str, etree._Element] = {}
        self.elements: dict[tuple[str, str], etree._Element] = {}

    # structure ------------------------------------------------------------------------------

    def root(self, part: str) -> etree._Element:
        part = part if self.split else "EQ"
        if part not in self.roots:
            nsmap = {"cim": self.ns, "rdf": RDF_NS}
            if self.cgmes:
                nsmap.update({"md": MD_NS, "entsoe": ENTSOE_NS})
            root = etree.Element(f"{{{RDF_NS}}}RDF", nsmap=nsmap)
            if self.cgmes:
                header = etree.SubElement(
                    root, f"{{{MD_NS}}}FullModel", {f"{{{RDF_NS}}}about": "urn:uuid:" + _derived_id(self.model.name, part)}
                )
                etree.SubElement(header, f"{{{MD_NS}}}Model.description").text = f"{self.model.name} {part}"
                profiles = [_CGMES_PROFILES[part]] if self.split else list(_CGMES_PROFILES.values())
                for uri in profiles:
                    etree.SubElement(header, f"{{{MD_NS}}}Model.profile").text = uri
            self.roots[part] = root
        return self.roots[part]

    def _ref_value(self, mrid: str) -> str:
        if self.cgmes:
            return "#" + self._rdf_id(mrid)
        if _is_uuid(mrid):
            return "urn:uuid:" + mrid
        return "#" + quote(mrid, safe="")

    @staticmethod
    def _rdf_id(mrid: str) -> str:
        return mrid if mrid.startswith("_") else "_" + mrid

    def obj(self, cls: str, mrid: str, part: str = "EQ", defining_part: str = "EQ") -> etree._Element:
        actual = part if self.split else "EQ"
        key = (actual, mrid)
        element = self.elements.get(key)
        if element is None:
            root = self.root(actual)
            if self.cgmes and (actual == defining_part or not self.split):
                attributes = {f"{{{RDF_NS}}}ID": self._rdf_id(mrid)}
            elif self.cgmes:
                attributes = {f"{{{RDF_NS}}}about": "#" + self._rdf_id(mrid)}
            else:
                attributes = {f"{{{RDF_NS}}}about": self._ref_value(mrid)}
            element = self.elements[key] = etree.SubElement(root, f"{{{self.ns}}}{cls}", attributes)
        return element

    def literal(self, element: etree._Element, prop: str, text: str) -> None:
        etree.SubElement(element, f"{{{self.ns}}}{prop}").text = text

    def ref(self, element: etree._Element, prop: str, mrid: str) -> None:
        etree.SubElement(element, f"{{{self.ns}}}{prop}", {_R: self._ref_value(mrid)})

    def enum(self, element: etree._Element, prop: str, enum_type: str, value: str) -> None:
        etree.SubElement(element, f"{{{self.ns}}}{prop}", {_R: f"{self.ns}{enum_type}.{value}"})

    # objects --------------------------------------------------------------------------------

    def write_object(self, obj: el.IdentifiedObject, cls: str, props: list[tuple[str, str, str]], with_mrid: bool = True) -> etree._Element:
        defining = "TP" if cls == "TopologicalNode" else "EQ"
        element = self.obj(cls, obj.mrid, defining, defining)
        if with_mrid:
            self.literal(element, "IdentifiedObject.mRID", obj.mrid)
        for prop, field, kind in props:
            value = getattr(obj, field)
            if value is None or value == "" and kind in ("str", "ref") or kind.startswith("enum:") and value == "":
                continue
            part = "SSH" if prop in SSH_PROPS else "TP" if prop in TP_PROPS or cls == "TopologicalNode" else "EQ"
            target = element if part == defining or not self.split else self.obj(cls, obj.mrid, part, defining)
            if kind == "ref":
                self.ref(target, prop, value)
            elif kind.startswith("enum:"):
                self.enum(target, prop, kind[5:], value)
            else:
                self.literal(target, prop, to_cim(kind, value, self.units))
        return element

    def helper(self, cls: str, mrid: str) -> etree._Element:
        return self.obj(cls, mrid)

    def num(self, element: etree._Element, prop: str, kind: str, value: float) -> None:
        self.literal(element, prop, to_cim(kind, value, self.units))

    def write_model(self) -> None:
        model = self.model
        tank_ends: dict[str, list[el.PowerTransformerEnd]] = {}
        for end in model.of_type(el.PowerTransformerEnd):
            if end.transformer_tank:
                tank_ends.setdefault(end.transformer_tank, []).append(end)
        for obj in model.objects.values():
            cls, props = CLASSES[type(obj)]
            if isinstance(obj, el.PowerTransformerEnd) and obj.transformer_tank:
                continue  # written with its tank
            element = self.write_object(obj, cls, props)
            if isinstance(obj, el.Location):
                self._location(obj, element)
            elif isinstance(obj, el.PerLengthPhaseImpedance):
                self._phase_impedance(obj)
            elif isinstance(obj, el.RatioTapChanger):
                self._tap_control(obj, element)
            elif isinstance(obj, el.ACLineSegment) and obj.max_i_ka is not None:
                self._current_limit(obj)
            elif isinstance(obj, el.TransformerTank):
                self._tank(obj, element, sorted(tank_ends.get(obj.mrid, ()), key=lambda e: e.end_number))
        for node, (u_kv, angle_deg) in model.state_voltages.items():
            sv = self.obj("SvVoltage", _derived_id(node, "SvVoltage"), "SV", "SV")
            self.num(sv, "SvVoltage.v", "V", u_kv)
            self.num(sv, "SvVoltage.angle", "float", angle_deg)
            self.ref(sv, "SvVoltage.TopologicalNode", node)

    def _location(self, location: el.Location, element: etree._Element) -> None:
        if location.coordinate_system:
            crs_id = _derived_id("CoordinateSystem", location.coordinate_system)
            if ("EQ", crs_id) not in self.elements:
                crs = self.helper("CoordinateSystem", crs_id)
                self.literal(crs, "IdentifiedObject.mRID", crs_id)
                self.literal(crs, "IdentifiedObject.name", location.coordinate_system)
                self.literal(crs, "CoordinateSystem.crsUrn", location.coordinate_system)
            self.ref(element, "Location.CoordinateSystem", crs_id)
        for number, (x, y) in enumerate(location.points, start=1):
            point = self.helper("PositionPoint", _derived_id(location.mrid, "PositionPoint", str(number)))
            self.ref(point, "PositionPoint.Location", location.mrid)
            self.literal(point, "PositionPoint.sequenceNumber", str(number))
            self.num(point, "PositionPoint.xPosition", "float", x)
            self.num(point, "PositionPoint.yPosition", "float", y)

    def _phase_impedance(self, impedance: el.PerLengthPhaseImpedance) -> None:
        for entry in impedance.entries:
            data = self.helper("PhaseImpedanceData", _derived_id(impedance.mrid, "PhaseImpedanceData", str(entry.row), str(entry.col)))
            self.ref(data, "PhaseImpedanceData.PhaseImpedance", impedance.mrid)
            self.literal(data, "PhaseImpedanceData.row", str(entry.row))
            self.literal(data, "PhaseImpedanceData.column", str(entry.col))
            self.num(data, "PhaseImpedanceData.r", "ohm_pl", entry.r_ohm_per_km)
            self.num(data, "PhaseImpedanceData.x", "ohm_pl", entry.x_ohm_per_km)
            self.num(data, "PhaseImpedanceData.b", "S_pl", entry.b_us_per_km)

    def _tap_control(self, changer: el.RatioTapChanger, element: etree._Element) -> None:
        if changer.target_u_kv is None and changer.target_deadband_kv is None:
            return
        control_id = _derived_id(changer.mrid, "TapChangerControl")
        self.ref(element, "TapChanger.TapChangerControl", control_id)
        control = self.helper("TapChangerControl", control_id)
        self.literal(control, "IdentifiedObject.mRID", control_id)
        self.literal(control, "IdentifiedObject.name", f"{changer.name or changer.mrid}_ctrl")
        self.enum(control, "RegulatingControl.mode", "RegulatingControlModeKind", "voltage")
        end = self.model.objects.get(changer.transformer_end)
        if isinstance(end, el.PowerTransformerEnd) and end.terminal:
            self.ref(control, "RegulatingControl.Terminal", end.terminal)
        ssh = self.obj("TapChangerControl", control_id, "SSH")
        self.literal(ssh, "RegulatingControl.enabled", "true" if changer.control_enabled else "false")
        self.literal(ssh, "RegulatingControl.discrete", "true")
        if changer.target_u_kv is not None:
            self.num(ssh, "RegulatingControl.targetValue", "V", changer.target_u_kv)
        if changer.target_deadband_kv is not None:
            self.num(ssh, "RegulatingControl.targetDeadband", "V", changer.target_deadband_kv)
        if self.cgmes:
            self.enum(ssh, "RegulatingControl.targetValueUnitMultiplier", "UnitMultiplier", "k")

    def _current_limit(self, line: el.ACLineSegment) -> None:
        set_id = _derived_id(line.mrid, "OperationalLimitSet")
        limit_set = self.helper("OperationalLimitSet", set_id)
        self.literal(limit_set, "IdentifiedObject.mRID", set_id)
        self.literal(limit_set, "IdentifiedObject.name", f"{line.name or line.mrid}_limits")
        self.ref(limit_set, "OperationalLimitSet.Equipment", line.mrid)
        limit_id = _derived_id(line.mrid, "CurrentLimit")
        limit = self.helper("CurrentLimit", limit_id)
        self.literal(limit, "IdentifiedObject.mRID", limit_id)
        self.literal(limit, "IdentifiedObject.name", f"{line.name or line.mrid}_imax")
        self.ref(limit, "OperationalLimit.OperationalLimitSet", set_id)
        self.num(limit, "CurrentLimit.value", "A", line.max_i_ka * 1000.0)  # type: ignore[operator]

    def _tank(self, tank: el.TransformerTank, element: etree._Element, ends: list[el.PowerTransformerEnd]) -> None:
        """A tank as OpenDSS/CIMHub write it: TransformerTankEnds + TransformerTankInfo with
        TransformerEndInfo (ratings, r), ShortCircuitTest (leakage impedance per pair of ends)
        and NoLoadTest (magnetising admittance)."""
        info_id = _derived_id(tank.mrid, "TransformerTankInfo")
        self.ref(element, "TransformerTank.TransformerTankInfo", info_id)
        info = self.helper("TransformerTankInfo", info_id)
        self.literal(info, "IdentifiedObject.mRID", info_id)
        self.literal(info, "IdentifiedObject.name", f"{tank.name or tank.mrid}_info")
        end_info_ids = {}
        for end in ends:
            tank_end = self.obj("TransformerTankEnd", end.mrid)
            self.literal(tank_end, "IdentifiedObject.mRID", end.mrid)
            if end.name:
                self.literal(tank_end, "IdentifiedObject.name", end.name)
            if end.description:
                self.literal(tank_end, "IdentifiedObject.description", end.description)
            self.ref(tank_end, "TransformerTankEnd.TransformerTank", tank.mrid)
            self.literal(tank_end, "TransformerEnd.endNumber", str(end.end_number))
            self.literal(tank_end, "TransformerEnd.grounded", "true" if end.grounded else "false")
            self.enum(tank_end, "TransformerTankEnd.orderedPhases", "OrderedPhaseCodeKind", end.phases)
            if end.terminal:
                self.ref(tank_end, "TransformerEnd.Terminal", end.terminal)
            if end.base_voltage:
                self.ref(tank_end, "TransformerEnd.BaseVoltage", end.base_voltage)
            end_info_id = end_info_ids[end.mrid] = _derived_id(end.mrid, "TransformerEndInfo")
            end_info = self.helper("TransformerEndInfo", end_info_id)
            self.literal(end_info, "IdentifiedObject.mRID", end_info_id)
            self.literal(end_info, "IdentifiedObject.name", f"{end.name or end.mrid}_info")
            self.ref(end_info, "TransformerEndInfo.TransformerTankInfo", info_id)
            self.literal(end_info, "TransformerEndInfo.endNumber", str(end.end_number))
            self.enum(end_info, "TransformerEndInfo.connectionKind", "WindingConnection", end.connection)
            self.literal(end_info, "TransformerEndInfo.phaseAngleClock", str(end.phase_angle_clock))
            self.num(end_info, "TransformerEndInfo.ratedU", "V", end.rated_u_kv)
            self.num(end_info, "TransformerEndInfo.ratedS", "P", end.rated_s_mva)
            self.num(end_info, "TransformerEndInfo.r", "ohm", end.r_ohm)
        for i, end_i in enumerate(ends):
            for end_j in ends[i + 1:]:
                ratio = (end_i.rated_u_kv / end_j.rated_u_kv) ** 2 if end_i.rated_u_kv and end_j.rated_u_kv else 1.0
                r = end_i.r_ohm + end_j.r_ohm * ratio
                x = end_i.x_ohm + end_j.x_ohm * ratio
                test_id = _derived_id(end_i.mrid, end_j.mrid, "ShortCircuitTest")
                test = self.helper("ShortCircuitTest", test_id)
                self.literal(test, "IdentifiedObject.mRID", test_id)
                self.ref(test, "ShortCircuitTest.EnergisedEnd", end_info_ids[end_i.mrid])
                self.ref(test, "ShortCircuitTest.GroundedEnds", end_info_ids[end_j.mrid])
                self.num(test, "ShortCircuitTest.leakageImpedance", "ohm", math.hypot(r, x))
                current_ka = end_i.rated_s_mva / end_i.rated_u_kv if end_i.rated_u_kv else 0.0
                self.num(test, "ShortCircuitTest.loss", "P", r * current_ka**2)
                self.num(test, "TransformerTest.basePower", "P", end_i.rated_s_mva)
        for end in ends:
            if not (end.g_us or end.b_us) or not end.rated_u_kv or not end.rated_s_mva:
                continue
            test_id = _derived_id(end.mrid, "NoLoadTest")
            test = self.helper("NoLoadTest", test_id)
            self.literal(test, "IdentifiedObject.mRID", test_id)
            self.ref(test, "NoLoadTest.EnergisedEnd", end_info_ids[end.mrid])
            self.num(test, "NoLoadTest.energisedEndVoltage", "V", end.rated_u_kv)
            self.num(test, "TransformerTest.basePower", "P", end.rated_s_mva)
            self.num(test, "NoLoadTest.loss", "P", end.g_us * 1e-6 * end.rated_u_kv**2)
            y = math.hypot(end.g_us, end.b_us) * 1e-6
            self.num(test, "NoLoadTest.excitingCurrent", "float", 100.0 * y * end.rated_u_kv**2 / end.rated_s_mva)


def write_cim(model: NetworkModel, path: str | os.PathLike[str], profile: str = "cim100") -> Path:
    """Write ``model`` as CIM RDF/XML.

    :param profile: ``"cim100"`` — one file in the CIM100 namespace, SI units (V, W, m), as
        OpenDSS/CIMHub write it; ``"cgmes"`` — CGMES 2.4.15 namespace and units (kV, MW, km):
        a ``.zip`` path gets ``<stem>_EQ.xml``, ``_SSH.xml``, ``_TP.xml`` (and ``_SV.xml`` when
        the model holds solved voltages), any other path one merged file.
    :return: the written path.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown CIM profile {profile!r}; use one of {', '.join(PROFILES)}")
    path = Path(path)
    split = profile == "cgmes" and path.suffix.lower() == ".zip"
    document = _Document(model, profile, split)
    document.root("EQ")
    document.write_model()
    path.parent.mkdir(parents=True, exist_ok=True)
    if split:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for part, root in document.roots.items():
                archive.writestr(f"{path.stem}_{part}.xml", etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    else:
        etree.ElementTree(document.roots["EQ"]).write(str(path), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return path
