"""CIM-based network model elements (IEC 61970-301 / IEC 61968-13 distribution subset).

Classes follow CIM names; attributes use engineering units in their names like pandapower
(``r_ohm``, ``length_km``, ``p_mw``, ``rated_u_kv``). References to other objects are mRID
strings, resolved through :class:`~dms_kernel.model.network.NetworkModel`. Objects are mutable
(``attrs.define``) because switch states, tap positions and loads change at run time.

Phases are CIM ``PhaseCode`` strings: ``"ABC"``, ``"ABCN"``, ``"AN"``, ``"BC"``, ``"s1s2"``….
"""

from __future__ import annotations

import attrs

__all__ = [
    "IdentifiedObject",
    "BaseVoltage",
    "GeographicalRegion",
    "Substation",
    "VoltageLevel",
    "Feeder",
    "Location",
    "ConnectivityNode",
    "TopologicalNode",
    "Terminal",
    "ConductingEquipment",
    "PerLengthSequenceImpedance",
    "PerLengthPhaseImpedance",
    "PhaseImpedanceEntry",
    "ACLineSegment",
    "ACLineSegmentPhase",
    "PowerTransformer",
    "TransformerTank",
    "PowerTransformerEnd",
    "RatioTapChanger",
    "Switch",
    "Breaker",
    "Recloser",
    "LoadBreakSwitch",
    "Disconnector",
    "Fuse",
    "Sectionaliser",
    "Jumper",
    "GroundDisconnector",
    "LoadResponseCharacteristic",
    "EnergyConsumer",
    "EnergyConsumerPhase",
    "EnergySource",
    "LinearShuntCompensator",
    "LinearShuntCompensatorPhase",
    "PowerElectronicsUnit",
    "PhotoVoltaicUnit",
    "BatteryUnit",
    "PowerElectronicsConnection",
    "SynchronousMachine",
    "Measurement",
    "Analog",
    "Discrete",
    "MeasurementValue",
    "AnalogValue",
    "DiscreteValue",
    "RemoteUnit",
    "RemoteSource",
    "SWITCH_TYPES",
]


@attrs.define(eq=False)
class IdentifiedObject:
    """Anything with an mRID (CIM ``IdentifiedObject``)."""

    mrid: str
    name: str = ""
    description: str = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.mrid!r}, name={self.name!r})"


# -- containers and context -------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class BaseVoltage(IdentifiedObject):
    nominal_kv: float = 0.0


@attrs.define(eq=False, repr=False)
class GeographicalRegion(IdentifiedObject):
    pass


@attrs.define(eq=False, repr=False)
class Substation(IdentifiedObject):
    region: str | None = None


@attrs.define(eq=False, repr=False)
class VoltageLevel(IdentifiedObject):
    substation: str | None = None
    base_voltage: str | None = None


@attrs.define(eq=False, repr=False)
class Feeder(IdentifiedObject):
    """A feeder (CIM ``Feeder``): equipment belongs to it through ``container``."""

    normal_head_terminal: str | None = None
    substation: str | None = None


@attrs.define(eq=False, repr=False)
class Location(IdentifiedObject):
    """Map position of equipment: ``points`` are ``(x, y)`` in order (lon/lat for WGS 84)."""

    points: list[tuple[float, float]] = attrs.field(factory=list)
    coordinate_system: str = ""


# -- connectivity -----------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class ConnectivityNode(IdentifiedObject):
    container: str | None = None
    topological_node: str | None = None


@attrs.define(eq=False, repr=False)
class TopologicalNode(IdentifiedObject):
    container: str | None = None
    base_voltage: str | None = None


@attrs.define(eq=False, repr=False)
class Terminal(IdentifiedObject):
    """Connection point of equipment: to a ConnectivityNode (and/or a TopologicalNode in bus-branch files)."""

    conducting_equipment: str = ""
    connectivity_node: str | None = None
    topological_node: str | None = None
    sequence_number: int = 1
    phases: str = "ABC"
    connected: bool = True


@attrs.define(eq=False, repr=False)
class ConductingEquipment(IdentifiedObject):
    """Equipment with terminals; ``terminals`` are mRIDs ordered by sequence number."""

    terminals: list[str] = attrs.field(factory=list)
    container: str | None = None
    base_voltage: str | None = None
    location: str | None = None
    phases: str = "ABC"
    in_service: bool = True


# -- lines ------------------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class PerLengthSequenceImpedance(IdentifiedObject):
    r_ohm_per_km: float = 0.0
    x_ohm_per_km: float = 0.0
    b_us_per_km: float = 0.0
    r0_ohm_per_km: float = 0.0
    x0_ohm_per_km: float = 0.0
    b0_us_per_km: float = 0.0


@attrs.define(eq=False)
class PhaseImpedanceEntry:
    """One element ``(row, col)`` of a per-length phase impedance matrix (1-based, lower triangle)."""

    row: int
    col: int
    r_ohm_per_km: float
    x_ohm_per_km: float
    b_us_per_km: float = 0.0


@attrs.define(eq=False, repr=False)
class PerLengthPhaseImpedance(IdentifiedObject):
    conductor_count: int = 3
    entries: list[PhaseImpedanceEntry] = attrs.field(factory=list)

    def matrices(self) -> tuple[list[list[complex]], list[list[float]]]:
        """Full symmetric ``z`` (ohm/km, complex) and ``b`` (µS/km) matrices."""
        n = self.conductor_count
        z = [[0j] * n for _ in range(n)]
        b = [[0.0] * n for _ in range(n)]
        for entry in self.entries:
            i, j = entry.row - 1, entry.col - 1
            z[i][j] = z[j][i] = complex(entry.r_ohm_per_km, entry.x_ohm_per_km)
            b[i][j] = b[j][i] = entry.b_us_per_km
        return z, b


@attrs.define(eq=False, repr=False)
class ACLineSegmentPhase(IdentifiedObject):
    line: str = ""
    phase: str = "A"
    sequence_number: int = 1


@attrs.define(eq=False, repr=False)
class ACLineSegment(ConductingEquipment):
    """A line or cable section; impedance either total (``r_ohm`` …) or per length."""

    length_km: float = 0.0
    r_ohm: float | None = None
    x_ohm: float | None = None
    b_us: float | None = None
    r0_ohm: float | None = None
    x0_ohm: float | None = None
    b0_us: float | None = None
    per_length_impedance: str | None = None
    max_i_ka: float | None = None


# -- transformers -----------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class PowerTransformer(ConductingEquipment):
    """2- or 3-winding transformer (ends), or a bank of single-phase tanks."""

    vector_group: str = ""


@attrs.define(eq=False, repr=False)
class TransformerTank(IdentifiedObject):
    """A single-phase (or three-phase) tank of a transformer bank."""

    power_transformer: str | None = None


@attrs.define(eq=False, repr=False)
class PowerTransformerEnd(IdentifiedObject):
    """One winding. Impedances referred to this end's rated voltage."""

    power_transformer: str | None = None
    transformer_tank: str | None = None
    terminal: str | None = None
    end_number: int = 1
    rated_s_mva: float = 0.0
    rated_u_kv: float = 0.0
    r_ohm: float = 0.0
    x_ohm: float = 0.0
    g_us: float = 0.0
    b_us: float = 0.0
    r0_ohm: float | None = None
    x0_ohm: float | None = None
    connection: str = "Y"  #: ``D``, ``Y``, ``Yn``, ``Z``, ``Zn``, ``I`` (single-phase)
    phase_angle_clock: int = 0
    grounded: bool = False
    phases: str = "ABC"
    base_voltage: str | None = None


@attrs.define(eq=False, repr=False)
class RatioTapChanger(IdentifiedObject):
    """On-load tap changer on one end. ``step`` is the actual position."""

    transformer_end: str = ""
    low_step: int = 0
    high_step: int = 0
    neutral_step: int = 0
    normal_step: int = 0
    step: float = 0.0
    step_voltage_increment_percent: float = 0.0
    neutral_u_kv: float | None = None
    control_enabled: bool = False
    target_u_kv: float | None = None
    target_deadband_kv: float | None = None


# -- switches ---------------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class Switch(ConductingEquipment):
    """A switch; ``normal_open`` is its normal state, ``open`` the actual (real-time) state."""

    normal_open: bool = False
    open: bool = False
    rated_current_a: float | None = None
    retained: bool = False


@attrs.define(eq=False, repr=False)
class Breaker(Switch):
    pass


@attrs.define(eq=False, repr=False)
class Recloser(Switch):
    pass


@attrs.define(eq=False, repr=False)
class LoadBreakSwitch(Switch):
    pass


@attrs.define(eq=False, repr=False)
class Disconnector(Switch):
    pass


@attrs.define(eq=False, repr=False)
class Fuse(Switch):
    pass


@attrs.define(eq=False, repr=False)
class Sectionaliser(Switch):
    pass


@attrs.define(eq=False, repr=False)
class Jumper(Switch):
    pass


SWITCH_TYPES: tuple[type[Switch], ...] = (Switch, Breaker, Recloser, LoadBreakSwitch, Disconnector, Fuse, Sectionaliser, Jumper)


@attrs.define(eq=False, repr=False)
class GroundDisconnector(ConductingEquipment):
    """An earthing switch (CIM ``GroundDisconnector``): one terminal; closed (``open`` False) it earths its node.

    Unlike CIM it is not a :class:`Switch` here: it never carries load current, so the power-flow
    converters and the topology processor treat it as one-terminal equipment, not as a branch.
    """

    normal_open: bool = True
    open: bool = True


# -- loads and generation ---------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class LoadResponseCharacteristic(IdentifiedObject):
    """ZIP or exponential voltage dependence of a load (CIM ``LoadResponseCharacteristic``).

    ZIP: ``p = p0 * (pz*(u/u0)^2 + pi*(u/u0) + pp)`` with the three factors summing to 1 (percent
    in CIM, fractions here). Exponential: ``p = p0 * (u/u0)^p_exponent``.
    """

    exponent_model: bool = False
    p_constant_impedance: float = 0.0
    p_constant_current: float = 0.0
    p_constant_power: float = 1.0
    q_constant_impedance: float = 0.0
    q_constant_current: float = 0.0
    q_constant_power: float = 1.0
    p_voltage_exponent: float = 0.0
    q_voltage_exponent: float = 0.0


@attrs.define(eq=False, repr=False)
class EnergyConsumerPhase(IdentifiedObject):
    consumer: str = ""
    phase: str = "A"
    p_mw: float = 0.0
    q_mvar: float = 0.0


@attrs.define(eq=False, repr=False)
class EnergyConsumer(ConductingEquipment):
    """A load; per-phase values in ``EnergyConsumerPhase`` objects for unbalanced loads."""

    p_mw: float = 0.0
    q_mvar: float = 0.0
    connection: str = "Y"  #: ``Y`` (phase-neutral) or ``D`` (phase-phase)
    load_response: str | None = None
    customer_count: int = 0


@attrs.define(eq=False, repr=False)
class EnergySource(ConductingEquipment):
    """Slack / grid infeed with its Thevenin impedance."""

    nominal_kv: float = 0.0
    voltage_kv: float = 0.0
    voltage_angle_deg: float = 0.0
    r_ohm: float = 0.0
    x_ohm: float = 0.0
    r0_ohm: float = 0.0
    x0_ohm: float = 0.0


@attrs.define(eq=False, repr=False)
class LinearShuntCompensator(ConductingEquipment):
    """Capacitor / reactor bank; ``sections`` switched in of ``maximum_sections``."""

    b_per_section_us: float = 0.0
    g_per_section_us: float = 0.0
    maximum_sections: int = 1
    sections: float = 1.0
    normal_sections: int = 1
    nominal_kv: float = 0.0
    connection: str = "Y"


@attrs.define(eq=False, repr=False)
class LinearShuntCompensatorPhase(IdentifiedObject):
    """One phase of an unbalanced capacitor bank (CIM ``LinearShuntCompensatorPhase``)."""

    shunt_compensator: str = ""
    phase: str = "A"
    b_per_section_us: float = 0.0
    g_per_section_us: float = 0.0
    maximum_sections: int = 1
    sections: float = 1.0
    normal_sections: int = 1


@attrs.define(eq=False, repr=False)
class PowerElectronicsUnit(IdentifiedObject):
    power_electronics_connection: str | None = None
    max_p_mw: float = 0.0
    min_p_mw: float = 0.0


@attrs.define(eq=False, repr=False)
class PhotoVoltaicUnit(PowerElectronicsUnit):
    pass


@attrs.define(eq=False, repr=False)
class BatteryUnit(PowerElectronicsUnit):
    rated_e_mwh: float = 0.0
    stored_e_mwh: float = 0.0


@attrs.define(eq=False, repr=False)
class PowerElectronicsConnection(ConductingEquipment):
    """Inverter connection of PV or battery units. Generation is positive ``p_mw``."""

    p_mw: float = 0.0
    q_mvar: float = 0.0
    rated_s_mva: float = 0.0
    rated_u_kv: float = 0.0
    max_q_mvar: float | None = None
    min_q_mvar: float | None = None


@attrs.define(eq=False, repr=False)
class SynchronousMachine(ConductingEquipment):
    p_mw: float = 0.0
    q_mvar: float = 0.0
    rated_s_mva: float = 0.0
    rated_u_kv: float = 0.0


# -- measurements -----------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class Measurement(IdentifiedObject):
    """A measurement on a terminal; ``point`` is the SCADA point name it feeds (default: mRID)."""

    terminal: str | None = None
    power_system_resource: str | None = None
    measurement_type: str = ""
    phases: str = "ABC"
    unit: str = ""
    unit_multiplier: str = ""
    point: str | None = None

    @property
    def point_name(self) -> str:
        return self.point or self.name or self.mrid


@attrs.define(eq=False, repr=False)
class Analog(Measurement):
    """Analogue measurement: ``PhaseVoltage``, ``LineCurrent``, ``ThreePhaseActivePower``…"""

    normal_value: float | None = None
    min_value: float | None = None
    max_value: float | None = None


@attrs.define(eq=False, repr=False)
class Discrete(Measurement):
    """Discrete measurement: ``SwitchPosition``, ``TapPosition``…"""

    normal_value: int | None = None


# -- SCADA addressing (IEC 61970-301 SCADA package) ---------------------------------------


@attrs.define(eq=False, repr=False)
class MeasurementValue(IdentifiedObject):
    """A value of a measurement (CIM ``AnalogValue``/``DiscreteValue``); ``measurement`` is its Analog/Discrete."""

    measurement: str | None = None


@attrs.define(eq=False, repr=False)
class AnalogValue(MeasurementValue):
    pass


@attrs.define(eq=False, repr=False)
class DiscreteValue(MeasurementValue):
    pass


@attrs.define(eq=False, repr=False)
class RemoteUnit(IdentifiedObject):
    """An RTU, IED or meter the DMS talks to; its ``name`` is the connection a protocol source is configured with."""

    remote_unit_type: str = "RTU"  #: CIM ``RemoteUnitType``: RTU, SubstationControlSystem, ControlCenter, IED


@attrs.define(eq=False, repr=False)
class RemoteSource(IdentifiedObject):
    """Where a measurement value comes from: its ``name`` is the protocol address at the ``remote_unit``
    (``1:1001`` for IEC 104, an object reference for IEC 61850, a node id for OPC UA…)."""

    remote_unit: str | None = None  #: CIM ``RemotePoint.RemoteUnit``
    measurement_value: str | None = None  #: CIM ``RemoteSource.MeasurementValue``
