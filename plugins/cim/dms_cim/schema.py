"""Mapping between CIM RDF/XML classes/properties and the Leitstand network model.

Every model class has a list of ``(CIM property, model field, kind)`` triples (inherited along
the class hierarchy). ``kind`` says how a value is converted:

==========  =====================================  ==========================  ====================
kind        model unit                             CIM100 (SI, no multiplier)  CGMES 2.4.15
==========  =====================================  ==========================  ====================
``V``       kV                                     V                           kV
``P``       MW / Mvar / MVA                        W / var / VA                MW / Mvar / MVA
``G``       MW / Mvar, generation positive         W / var, generation > 0     MW / Mvar, load sign
``len``     km                                     m                           km
``ohm``     ohm                                    ohm                         ohm
``S``       µS                                     S                           S
``ohm_pl``  ohm/km                                 ohm/m                       ohm/m
``S_pl``    µS/km                                  S/m                         S/m
``A``       A                                      A                           A
``E``       MWh                                    Wh                          MWh
``pct``     fraction (0..1)                        percent                     percent
``rad``     degrees                                radians                     radians
==========  =====================================  ==========================  ====================
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from dms_kernel.model import elements as el

CIM100_NS = "http://iec.ch/TC57/CIM100#"
CIM16_NS = "http://iec.ch/TC57/2013/CIM-schema-cim16#"
ENTSOE_NS = "http://entsoe.eu/CIM/SchemaExtension/3/1#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MD_NS = "http://iec.ch/TC57/61970-552/ModelDescription/1#"

#: model value = sign * CIM value * 10**exponent (exact decimal scaling: 400000 W -> 0.4 MW)
SCALES: dict[str, dict[str, tuple[int, int]]] = {
    "si": {"V": (1, -3), "P": (1, -6), "G": (1, -6), "len": (1, -3), "ohm": (1, 0), "S": (1, 6), "ohm_pl": (1, 3),
           "S_pl": (1, 9), "A": (1, 0), "E": (1, -6), "pct": (1, -2)},
    "cgmes": {"V": (1, 0), "P": (1, 0), "G": (-1, 0), "len": (1, 0), "ohm": (1, 0), "S": (1, 6), "ohm_pl": (1, 3),
              "S_pl": (1, 9), "A": (1, 0), "E": (1, 0), "pct": (1, -2)},
}


def scale(value: float, sign: int, exponent: int) -> float:
    """``sign * value * 10**exponent``, dividing for negative exponents (no 0.39999999999999997)."""
    value = value * 10**exponent if exponent >= 0 else value / 10 ** (-exponent)
    return value if sign > 0 else -value


Prop = tuple[str, str, str]

_IDENTIFIED: list[Prop] = [
    ("IdentifiedObject.name", "name", "str"),
    ("IdentifiedObject.description", "description", "str"),
]
_EQUIPMENT: list[Prop] = [
    ("Equipment.EquipmentContainer", "container", "ref"),
    ("ConductingEquipment.BaseVoltage", "base_voltage", "ref"),
    ("PowerSystemResource.Location", "location", "ref"),
    ("Equipment.inService", "in_service", "bool"),
]
_SWITCH: list[Prop] = [
    ("Switch.normalOpen", "normal_open", "bool"),
    ("Switch.open", "open", "bool"),
    ("Switch.ratedCurrent", "rated_current_a", "A"),
    ("Switch.retained", "retained", "bool"),
]
_PE_UNIT: list[Prop] = [
    ("PowerElectronicsUnit.PowerElectronicsConnection", "power_electronics_connection", "ref"),
    ("PowerElectronicsUnit.maxP", "max_p_mw", "P"),
    ("PowerElectronicsUnit.minP", "min_p_mw", "P"),
]
_MEASUREMENT: list[Prop] = [
    ("IdentifiedObject.aliasName", "point", "str"),
    ("Measurement.Terminal", "terminal", "ref"),
    ("Measurement.PowerSystemResource", "power_system_resource", "ref"),
    ("Measurement.measurementType", "measurement_type", "str"),
    ("Measurement.phases", "phases", "enum:PhaseCode"),
    ("Measurement.unitSymbol", "unit", "enum:UnitSymbol"),
    ("Measurement.unitMultiplier", "unit_multiplier", "enum:UnitMultiplier"),
]

#: model class -> (CIM class written, properties). Order = export order.
CLASSES: dict[type, tuple[str, list[Prop]]] = {
    el.BaseVoltage: ("BaseVoltage", [("BaseVoltage.nominalVoltage", "nominal_kv", "V")]),
    el.GeographicalRegion: ("GeographicalRegion", []),
    el.Substation: ("Substation", [("Substation.Region", "region", "ref")]),
    el.VoltageLevel: ("VoltageLevel", [
        ("VoltageLevel.Substation", "substation", "ref"),
        ("VoltageLevel.BaseVoltage", "base_voltage", "ref"),
    ]),
    el.Feeder: ("Feeder", [
        ("Feeder.NormalHeadTerminal", "normal_head_terminal", "ref"),
        ("Feeder.NormalEnergizingSubstation", "substation", "ref"),
    ]),
    el.Location: ("Location", []),
    el.TopologicalNode: ("TopologicalNode", [
        ("TopologicalNode.ConnectivityNodeContainer", "container", "ref"),
        ("TopologicalNode.BaseVoltage", "base_voltage", "ref"),
    ]),
    el.ConnectivityNode: ("ConnectivityNode", [
        ("ConnectivityNode.ConnectivityNodeContainer", "container", "ref"),
        ("ConnectivityNode.TopologicalNode", "topological_node", "ref"),
    ]),
    el.LoadResponseCharacteristic: ("LoadResponseCharacteristic", [
        ("LoadResponseCharacteristic.exponentModel", "exponent_model", "bool"),
        ("LoadResponseCharacteristic.pConstantImpedance", "p_constant_impedance", "pct"),
        ("LoadResponseCharacteristic.pConstantCurrent", "p_constant_current", "pct"),
        ("LoadResponseCharacteristic.pConstantPower", "p_constant_power", "pct"),
        ("LoadResponseCharacteristic.qConstantImpedance", "q_constant_impedance", "pct"),
        ("LoadResponseCharacteristic.qConstantCurrent", "q_constant_current", "pct"),
        ("LoadResponseCharacteristic.qConstantPower", "q_constant_power", "pct"),
        ("LoadResponseCharacteristic.pVoltageExponent", "p_voltage_exponent", "float"),
        ("LoadResponseCharacteristic.qVoltageExponent", "q_voltage_exponent", "float"),
    ]),
    el.PerLengthSequenceImpedance: ("PerLengthSequenceImpedance", [
        ("PerLengthSequenceImpedance.r", "r_ohm_per_km", "ohm_pl"),
        ("PerLengthSequenceImpedance.x", "x_ohm_per_km", "ohm_pl"),
        ("PerLengthSequenceImpedance.bch", "b_us_per_km", "S_pl"),
        ("PerLengthSequenceImpedance.r0", "r0_ohm_per_km", "ohm_pl"),
        ("PerLengthSequenceImpedance.x0", "x0_ohm_per_km", "ohm_pl"),
        ("PerLengthSequenceImpedance.b0ch", "b0_us_per_km", "S_pl"),
    ]),
    el.PerLengthPhaseImpedance: ("PerLengthPhaseImpedance", [
        ("PerLengthPhaseImpedance.conductorCount", "conductor_count", "int"),
    ]),
    el.ACLineSegment: ("ACLineSegment", _EQUIPMENT + [
        ("Conductor.length", "length_km", "len"),
        ("ACLineSegment.r", "r_ohm", "ohm"),
        ("ACLineSegment.x", "x_ohm", "ohm"),
        ("ACLineSegment.bch", "b_us", "S"),
        ("ACLineSegment.r0", "r0_ohm", "ohm"),
        ("ACLineSegment.x0", "x0_ohm", "ohm"),
        ("ACLineSegment.b0ch", "b0_us", "S"),
        ("ACLineSegment.PerLengthImpedance", "per_length_impedance", "ref"),
    ]),
    el.ACLineSegmentPhase: ("ACLineSegmentPhase", [
        ("ACLineSegmentPhase.ACLineSegment", "line", "ref"),
        ("ACLineSegmentPhase.phase", "phase", "enum:SinglePhaseKind"),
        ("ACLineSegmentPhase.sequenceNumber", "sequence_number", "int"),
    ]),
    el.PowerTransformer: ("PowerTransformer", _EQUIPMENT + [("PowerTransformer.vectorGroup", "vector_group", "str")]),
    el.TransformerTank: ("TransformerTank", [("TransformerTank.PowerTransformer", "power_transformer", "ref")]),
    el.PowerTransformerEnd: ("PowerTransformerEnd", [
        ("PowerTransformerEnd.PowerTransformer", "power_transformer", "ref"),
        ("TransformerEnd.Terminal", "terminal", "ref"),
        ("TransformerEnd.endNumber", "end_number", "int"),
        ("TransformerEnd.BaseVoltage", "base_voltage", "ref"),
        ("TransformerEnd.grounded", "grounded", "bool"),
        ("PowerTransformerEnd.ratedS", "rated_s_mva", "P"),
        ("PowerTransformerEnd.ratedU", "rated_u_kv", "V"),
        ("PowerTransformerEnd.r", "r_ohm", "ohm"),
        ("PowerTransformerEnd.x", "x_ohm", "ohm"),
        ("PowerTransformerEnd.g", "g_us", "S"),
        ("PowerTransformerEnd.b", "b_us", "S"),
        ("PowerTransformerEnd.r0", "r0_ohm", "ohm"),
        ("PowerTransformerEnd.x0", "x0_ohm", "ohm"),
        ("PowerTransformerEnd.connectionKind", "connection", "enum:WindingConnection"),
        ("PowerTransformerEnd.phaseAngleClock", "phase_angle_clock", "int"),
    ]),
    el.RatioTapChanger: ("RatioTapChanger", [
        ("RatioTapChanger.TransformerEnd", "transformer_end", "ref"),
        ("TapChanger.lowStep", "low_step", "int"),
        ("TapChanger.highStep", "high_step", "int"),
        ("TapChanger.neutralStep", "neutral_step", "int"),
        ("TapChanger.normalStep", "normal_step", "int"),
        ("TapChanger.step", "step", "float"),
        ("RatioTapChanger.stepVoltageIncrement", "step_voltage_increment_percent", "float"),
        ("TapChanger.neutralU", "neutral_u_kv", "V"),
        ("TapChanger.controlEnabled", "control_enabled", "bool"),
    ]),
    el.Breaker: ("Breaker", _EQUIPMENT + _SWITCH),
    el.Recloser: ("Recloser", _EQUIPMENT + _SWITCH),
    el.LoadBreakSwitch: ("LoadBreakSwitch", _EQUIPMENT + _SWITCH),
    el.Disconnector: ("Disconnector", _EQUIPMENT + _SWITCH),
    el.Fuse: ("Fuse", _EQUIPMENT + _SWITCH),
    el.Sectionaliser: ("Sectionaliser", _EQUIPMENT + _SWITCH),
    el.Jumper: ("Jumper", _EQUIPMENT + _SWITCH),
    el.Switch: ("Switch", _EQUIPMENT + _SWITCH),
    el.GroundDisconnector: ("GroundDisconnector", _EQUIPMENT + _SWITCH[:2]),
    el.EnergyConsumer: ("EnergyConsumer", _EQUIPMENT + [
        ("EnergyConsumer.p", "p_mw", "P"),
        ("EnergyConsumer.q", "q_mvar", "P"),
        ("EnergyConsumer.phaseConnection", "connection", "enum:PhaseShuntConnectionKind"),
        ("EnergyConsumer.LoadResponse", "load_response", "ref"),
        ("EnergyConsumer.customerCount", "customer_count", "int"),
    ]),
    el.EnergyConsumerPhase: ("EnergyConsumerPhase", [
        ("EnergyConsumerPhase.EnergyConsumer", "consumer", "ref"),
        ("EnergyConsumerPhase.phase", "phase", "enum:SinglePhaseKind"),
        ("EnergyConsumerPhase.p", "p_mw", "P"),
        ("EnergyConsumerPhase.q", "q_mvar", "P"),
    ]),
    el.EnergySource: ("EnergySource", _EQUIPMENT + [
        ("EnergySource.nominalVoltage", "nominal_kv", "V"),
        ("EnergySource.voltageMagnitude", "voltage_kv", "V"),
        ("EnergySource.voltageAngle", "voltage_angle_deg", "rad"),
        ("EnergySource.r", "r_ohm", "ohm"),
        ("EnergySource.x", "x_ohm", "ohm"),
        ("EnergySource.r0", "r0_ohm", "ohm"),
        ("EnergySource.x0", "x0_ohm", "ohm"),
    ]),
    el.LinearShuntCompensator: ("LinearShuntCompensator", _EQUIPMENT + [
        ("LinearShuntCompensator.bPerSection", "b_per_section_us", "S"),
        ("LinearShuntCompensator.gPerSection", "g_per_section_us", "S"),
        ("ShuntCompensator.maximumSections", "maximum_sections", "int"),
        ("ShuntCompensator.normalSections", "normal_sections", "int"),
        ("ShuntCompensator.sections", "sections", "float"),
        ("ShuntCompensator.nomU", "nominal_kv", "V"),
        ("ShuntCompensator.phaseConnection", "connection", "enum:PhaseShuntConnectionKind"),
    ]),
    el.LinearShuntCompensatorPhase: ("LinearShuntCompensatorPhase", [
        ("ShuntCompensatorPhase.ShuntCompensator", "shunt_compensator", "ref"),
        ("ShuntCompensatorPhase.phase", "phase", "enum:SinglePhaseKind"),
        ("LinearShuntCompensatorPhase.bPerSection", "b_per_section_us", "S"),
        ("LinearShuntCompensatorPhase.gPerSection", "g_per_section_us", "S"),
        ("ShuntCompensatorPhase.maximumSections", "maximum_sections", "int"),
        ("ShuntCompensatorPhase.normalSections", "normal_sections", "int"),
        ("ShuntCompensatorPhase.sections", "sections", "float"),
    ]),
    el.PowerElectronicsConnection: ("PowerElectronicsConnection", _EQUIPMENT + [
        ("PowerElectronicsConnection.p", "p_mw", "G"),
        ("PowerElectronicsConnection.q", "q_mvar", "G"),
        ("PowerElectronicsConnection.ratedS", "rated_s_mva", "P"),
        ("PowerElectronicsConnection.ratedU", "rated_u_kv", "V"),
        ("PowerElectronicsConnection.maxQ", "max_q_mvar", "P"),
        ("PowerElectronicsConnection.minQ", "min_q_mvar", "P"),
    ]),
    el.PhotoVoltaicUnit: ("PhotovoltaicUnit", _PE_UNIT),
    el.BatteryUnit: ("BatteryUnit", _PE_UNIT + [
        ("BatteryUnit.ratedE", "rated_e_mwh", "E"),
        ("BatteryUnit.storedE", "stored_e_mwh", "E"),
    ]),
    el.SynchronousMachine: ("SynchronousMachine", _EQUIPMENT + [
        ("RotatingMachine.p", "p_mw", "G"),
        ("RotatingMachine.q", "q_mvar", "G"),
        ("RotatingMachine.ratedS", "rated_s_mva", "P"),
        ("RotatingMachine.ratedU", "rated_u_kv", "V"),
    ]),
    el.Terminal: ("Terminal", [
        ("Terminal.ConductingEquipment", "conducting_equipment", "ref"),
        ("Terminal.ConnectivityNode", "connectivity_node", "ref"),
        ("Terminal.TopologicalNode", "topological_node", "ref"),
        ("ACDCTerminal.sequenceNumber", "sequence_number", "int"),
        ("Terminal.phases", "phases", "enum:PhaseCode"),
        ("ACDCTerminal.connected", "connected", "bool"),
    ]),
    el.Analog: ("Analog", _MEASUREMENT + [
        ("Analog.normalValue", "normal_value", "float"),
        ("Analog.minValue", "min_value", "float"),
        ("Analog.maxValue", "max_value", "float"),
    ]),
    el.Discrete: ("Discrete", _MEASUREMENT + [("Discrete.normalValue", "normal_value", "int")]),
    # SCADA addressing: RemoteSource -> MeasurementValue -> Analog/Discrete, RemotePoint.RemoteUnit = connection
    el.AnalogValue: ("AnalogValue", [("AnalogValue.Analog", "measurement", "ref")]),
    el.DiscreteValue: ("DiscreteValue", [("DiscreteValue.Discrete", "measurement", "ref")]),
    el.RemoteUnit: ("RemoteUnit", [("RemoteUnit.remoteUnitType", "remote_unit_type", "enum:RemoteUnitType")]),
    el.RemoteSource: ("RemoteSource", [
        ("RemotePoint.RemoteUnit", "remote_unit", "ref"),
        ("RemoteSource.MeasurementValue", "measurement_value", "ref"),
    ]),
}

for _cls, (_name, _props) in list(CLASSES.items()):
    CLASSES[_cls] = (_name, _IDENTIFIED + _props)

#: CIM class name read -> model class
READ_CLASSES: dict[str, type] = {name: cls for cls, (name, _) in CLASSES.items()}
READ_CLASSES.update({
    "PhotoVoltaicUnit": el.PhotoVoltaicUnit,  # CIM16 spelling
    "ConformLoad": el.EnergyConsumer,
    "NonConformLoad": el.EnergyConsumer,
    "TransformerTankEnd": el.PowerTransformerEnd,
})

#: classes read for their content but not kept as objects (not counted as unknown)
CONSUMED = {
    "PhaseImpedanceData", "PositionPoint", "CoordinateSystem", "TransformerMeshImpedance",
    "TransformerCoreAdmittance", "TransformerTankInfo", "TransformerEndInfo", "ShortCircuitTest",
    "NoLoadTest", "TapChangerControl", "RegulatingControl", "SubGeographicalRegion", "SvVoltage",
    "OperationalLimitSet", "CurrentLimit", "FullModel", "IEC61970CIMVersion",
}

#: unmodelled containers: follow this link upwards to a modelled object
PARENT_LINKS = {
    "SubGeographicalRegion": "SubGeographicalRegion.Region",
    "Bay": "Bay.VoltageLevel",
    "Line": "Line.Region",
}

#: CGMES profile of properties that do not belong to EQ
SSH_PROPS = {
    "EnergyConsumer.p", "EnergyConsumer.q", "RotatingMachine.p", "RotatingMachine.q", "Switch.open",
    "TapChanger.step", "TapChanger.controlEnabled", "ShuntCompensator.sections", "ACDCTerminal.connected",
    "RegulatingControl.targetValue", "RegulatingControl.targetDeadband", "RegulatingControl.enabled",
    "RegulatingControl.discrete", "RegulatingControl.targetValueUnitMultiplier",
    "EnergySource.voltageMagnitude", "EnergySource.voltageAngle", "PowerElectronicsConnection.p",
    "PowerElectronicsConnection.q",
}
TP_PROPS = {"ConnectivityNode.TopologicalNode", "Terminal.TopologicalNode"}


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    return value


def _text(value: Decimal) -> str:
    value = value.normalize()
    if value == 0:
        return "0"
    return format(value, "f") if -12 <= value.adjusted() <= 15 else str(value)


def to_model(kind: str, text: str, units: str) -> object:
    """Convert the text of a CIM literal to a model value (decimal scaling: 0.017361111 S -> 17361.111 µS)."""
    if kind == "str":
        return text
    if kind == "bool":
        return text.strip().lower() in ("true", "1")
    if kind == "int":
        return int(float(text))
    if kind.startswith("enum:"):
        return text.rsplit("#", 1)[-1].rsplit(".", 1)[-1]
    if kind == "float":
        return float(text)
    if kind == "rad":
        return math.degrees(float(text))
    sign, exponent = SCALES[units][kind]
    return float(_decimal(text).scaleb(exponent)) * sign


def to_cim(kind: str, value: object, units: str) -> str:
    """Text of a CIM literal for a model value (enums are handled by the writer); exact inverse of
    :func:`to_model` for every float."""
    if kind == "str":
        return str(value)
    if kind == "bool":
        return "true" if value else "false"
    if kind == "int":
        return str(int(value))  # type: ignore[call-overload]
    number = float(value)  # type: ignore[arg-type]
    if kind == "rad":
        number = math.radians(number)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    decimal = Decimal(repr(number))
    if kind not in ("float", "rad"):
        sign, exponent = SCALES[units][kind]
        decimal = decimal.scaleb(-exponent) * sign
    return _text(decimal)
