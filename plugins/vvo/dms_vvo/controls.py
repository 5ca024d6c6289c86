"""The VVO's control variables, found in the network model.

* :class:`Tap` — a ``RatioTapChanger`` (OLTC or regulator): integer step in ``low..high``;
* :class:`Capacitor` — a ``LinearShuntCompensator`` (switched bank): integer sections in
  ``0..maximum_sections`` (per-phase banks switch all their phases together);
* :class:`Inverter` — a ``PowerElectronicsConnection`` (PV, battery): continuous Q setpoint in
  its capability ``|Q| <= sqrt(S^2 - P^2)`` (or ``min_q_mvar..max_q_mvar`` when the model gives
  them), at its present P.

Each control knows how to read and write its value in the model and which SCADA point
commands it (the Discrete/Analog measurement of its equipment, when the model has one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from dms_kernel.model import (
    LinearShuntCompensator,
    LinearShuntCompensatorPhase,
    Measurement,
    NetworkModel,
    PowerElectronicsConnection,
    PowerTransformer,
    RatioTapChanger,
)

__all__ = ["Control", "Tap", "Capacitor", "Inverter", "find_controls"]


@attrs.define(eq=False)
class Control:
    """One decision variable."""

    mrid: str  #: the tap changer, shunt compensator or inverter
    name: str
    low: float
    high: float
    integer: bool
    point: str | None = None  #: the SCADA point that commands it
    objects: Sequence[Any] = ()  #: the model objects whose attribute is written

    kind = "control"
    attribute = ""

    def get(self) -> float:
        return float(getattr(self.objects[0], self.attribute))

    def set(self, value: float) -> None:
        for obj in self.objects:
            setattr(obj, self.attribute, value)

    def describe(self, value: float) -> str:
        return f"{self.name} = {value:g}"


class Tap(Control):
    kind = "tap"
    attribute = "step"

    def describe(self, value: float) -> str:
        return f"{self.name}: tap {value:g}"


class Capacitor(Control):
    kind = "capacitor"
    attribute = "sections"

    def describe(self, value: float) -> str:
        return f"{self.name}: {value:g} of {self.high:g} sections"


class Inverter(Control):
    kind = "inverter"
    attribute = "q_mvar"

    def describe(self, value: float) -> str:
        return f"{self.name}: Q = {value:.4f} Mvar"


def _point_of(model: NetworkModel, equipment_mrid: str, types: set[str]) -> str | None:
    for m in model.of_type(Measurement):
        if m.power_system_resource == equipment_mrid and m.measurement_type in types:
            return m.point_name
    return None


def find_controls(model: NetworkModel, *, taps: bool = True, capacitors: bool = True, inverters: bool = True) -> list[Control]:
    """The model's controllable taps, capacitor banks and inverters, in a stable order."""
    controls: list[Control] = []
    if taps:
        owner = {}
        for transformer in model.of_type(PowerTransformer):
            for end in model.ends(transformer):
                owner[end.mrid] = transformer
        for changer in sorted(model.of_type(RatioTapChanger), key=lambda c: c.mrid):
            if changer.high_step <= changer.low_step:
                continue
            transformer = owner.get(changer.transformer_end)
            point = _point_of(model, transformer.mrid, {"TapPosition"}) if transformer is not None else None
            name = changer.name or (transformer.name if transformer is not None else changer.mrid)
            controls.append(Tap(changer.mrid, name, changer.low_step, changer.high_step, True, point, (changer,)))
    if capacitors:
        phases: dict[str, list[LinearShuntCompensatorPhase]] = {}
        for phase in model.of_type(LinearShuntCompensatorPhase):
            phases.setdefault(phase.shunt_compensator, []).append(phase)
        for shunt in sorted(model.of_type(LinearShuntCompensator), key=lambda s: s.mrid):
            objects = [shunt, *phases.get(shunt.mrid, [])]
            high = max([shunt.maximum_sections, *(p.maximum_sections for p in objects[1:])])
            if high < 1:
                continue
            point = _point_of(model, shunt.mrid, {"SwitchPosition", "Sections", "ShuntCompensatorSections"})
            controls.append(Capacitor(shunt.mrid, shunt.name or shunt.mrid, 0, high, True, point, objects))
    if inverters:
        for inverter in sorted(model.of_type(PowerElectronicsConnection), key=lambda p: p.mrid):
            low, high = inverter_range(inverter)
            if high - low <= 1e-9:
                continue
            point = _point_of(model, inverter.mrid, {"ReactivePowerSetpoint", "QSetpoint"})
            controls.append(Inverter(inverter.mrid, inverter.name or inverter.mrid, low, high, False, point, (inverter,)))
    return controls


def inverter_range(inverter: PowerElectronicsConnection) -> tuple[float, float]:
    """Q capability at the present P: the model's min/max Q, else ``±sqrt(S^2 - P^2)``."""
    if inverter.min_q_mvar is not None and inverter.max_q_mvar is not None:
        return float(inverter.min_q_mvar), float(inverter.max_q_mvar)
    s = float(inverter.rated_s_mva or 0.0)
    headroom = math.sqrt(max(s * s - float(inverter.p_mw) ** 2, 0.0))
    return -headroom, headroom
