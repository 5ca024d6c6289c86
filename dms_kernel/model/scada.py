"""SCADA points from the network model.

The model's Analog/Discrete measurements define the SCADA points. :func:`measurement_points`
turns them into :class:`~dms_hookspecs.PointSpec` declarations (what a model-driven source,
such as the field simulator, declares). :func:`add_scada_measurements` equips a model that has
none — e.g. an example network from a planning tool — with the measurements a DSO typically
has: substation voltage, switch positions, tap positions, transformer P/Q, PV infeed.
"""

from __future__ import annotations

from dms_hookspecs import PointKind, PointSpec

from .elements import (
    Analog,
    ConductingEquipment,
    Discrete,
    EnergyConsumer,
    EnergySource,
    Measurement,
    PowerElectronicsConnection,
    PowerTransformer,
    Switch,
)
from .network import NetworkModel

__all__ = ["measurement_points", "add_scada_measurements"]

_CONTROLLABLE = {"SwitchPosition", "TapPosition"}
_BINARY = {"FaultPassageIndicator", "ProtectionTrip", "PowerFail"}  #: single-point Discretes


def _label(equipment: ConductingEquipment) -> str:
    return (equipment.name or equipment.mrid).replace(" ", "_")


def measurement_points(model: NetworkModel, deadband_fraction: float = 0.0) -> list[PointSpec]:
    """One point per model measurement (duplicates by point name are declared once)."""
    specs: dict[str, PointSpec] = {}
    for measurement in model.of_type(Measurement):
        name = measurement.point_name
        if name in specs:
            continue
        kind = measurement.measurement_type
        if isinstance(measurement, Discrete):
            point_kind = PointKind.DOUBLE if kind == "SwitchPosition" else PointKind.BINARY if kind in _BINARY else PointKind.STEP
            unit = ""
        else:
            point_kind = PointKind.ANALOG
            unit = f"{measurement.unit_multiplier if measurement.unit_multiplier not in ('', 'none') else ''}{measurement.unit}"
        specs[name] = PointSpec(
            name,
            point_kind,
            unit=unit,
            deadband=abs((measurement.normal_value or 0.0) * deadband_fraction) if isinstance(measurement, Analog) else 0.0,
            controllable=kind in _CONTROLLABLE,
            select_before_operate=kind == "SwitchPosition",
            description=f"{kind} of {measurement.power_system_resource or measurement.terminal}",
        )
    return list(specs.values())


def add_scada_measurements(model: NetworkModel, meters: bool = False) -> list[Measurement]:
    """Add the usual DSO measurements to ``model``; returns the added objects.

    Point names are ``<equipment name>/<quantity>``: ``U`` (kV, phase-to-phase) at sources,
    ``Pos`` at switches, ``Tap``, ``P`` (MW) and ``Q`` (Mvar, at the HV terminal) at
    transformers, ``P`` at PV/battery inverters; with ``meters``, also ``P`` of every load
    (a smart meter, read over AMI).
    """
    added: list[Measurement] = []

    def add(cls: type[Measurement], equipment: ConductingEquipment, quantity: str, kind: str, unit: str, terminal: int = 0) -> None:
        terminals = equipment.terminals
        measurement = cls(
            f"{equipment.mrid}_M_{quantity}",
            name=f"{_label(equipment)}/{quantity}",
            terminal=terminals[terminal] if len(terminals) > terminal else None,
            power_system_resource=equipment.mrid,
            measurement_type=kind,
            unit=unit,
            unit_multiplier="k" if unit == "V" else ("M" if unit in ("W", "VAr") else ""),
            point=f"{_label(equipment)}/{quantity}",
        )
        added.append(model.add(measurement))

    for source in model.of_type(EnergySource):
        add(Analog, source, "U", "LineToLineVoltage", "V")
    for switch in model.of_type(Switch):
        add(Discrete, switch, "Pos", "SwitchPosition", "")
    for transformer in model.of_type(PowerTransformer):
        if any(model.tap_changer(end) for end in model.ends(transformer)):
            add(Discrete, transformer, "Tap", "TapPosition", "")
        add(Analog, transformer, "P", "ThreePhaseActivePower", "W")
        add(Analog, transformer, "Q", "ThreePhaseReactivePower", "VAr")
    for inverter in model.of_type(PowerElectronicsConnection):
        add(Analog, inverter, "P", "ThreePhaseActivePower", "W")
    if meters:
        for load in model.of_type(EnergyConsumer):
            add(Analog, load, "P", "ThreePhaseActivePower", "W")
    return added
