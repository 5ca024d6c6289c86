"""Keep the network model in step with the point database.

The model's Analog/Discrete measurements name the SCADA points that feed it
(:attr:`Measurement.point_name`). Before each cyclic study, :meth:`LiveModel.apply` copies the
latest good values from a snapshot into the model:

=====================================  ==============================================
measurement type on equipment          model attribute
=====================================  ==============================================
``SwitchPosition`` on a Switch         ``open`` (IEC 61850 DPS: 1 = open, 2 = closed;
                                       binary: 0 = open, 1 = closed)
``TapPosition`` on a PowerTransformer  ``RatioTapChanger.step`` of its (first) tap changer
``ThreePhaseActivePower`` (P)          ``p_mw`` of a load, PV, battery or machine
``ThreePhaseReactivePower`` (Q)        ``q_mvar`` of the same
``PhaseVoltage``/``LineToLineVoltage`` ``voltage_kv`` of an EnergySource (phase-to-phase)
``SectionsInService`` on a shunt       ``LinearShuntCompensator.sections``
=====================================  ==============================================

Values are converted from the measurement's unit and multiplier (``W``, ``k``W, ``MW``,
``V``, ``kV``, ``VAr``…) to the model's MW/Mvar/kV. Invalid values are ignored, so the model
keeps its last good state.

Pseudo-loads: a P measurement on a branch whose equipment is no load (a feeder-head breaker
or a transformer) is a *feeder-head* measurement. Unmeasured loads are scaled so that their
sum plus the measured loads matches the sum of feeder-head measurements — the usual way a DMS
distributes a substation measurement over unmeasured customers in proportion to their
profile (nominal) values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs
import numpy as np

from dms_hookspecs import Validity
from dms_hookspecs.quality import _VALIDITY_MASK

from .elements import (
    ConductingEquipment,
    Discrete,
    EnergyConsumer,
    EnergySource,
    LinearShuntCompensator,
    Measurement,
    PowerElectronicsConnection,
    PowerTransformer,
    Switch,
    SynchronousMachine,
    Terminal,
)
from .network import NetworkModel

__all__ = ["LiveModel", "LiveUpdate", "unit_factor"]

_PREFIX = {"": 1.0, "none": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
_POWER_UNITS = {"W": 1e-6, "VAr": 1e-6, "var": 1e-6, "VA": 1e-6, "MW": 1.0, "Mvar": 1.0, "MVAr": 1.0, "kW": 1e-3, "kvar": 1e-3, "kVAr": 1e-3}
_VOLTAGE_UNITS = {"V": 1e-3, "kV": 1.0}
_GENERATING = (PowerElectronicsConnection, SynchronousMachine)
_VALUE_TYPES = (EnergyConsumer, PowerElectronicsConnection, SynchronousMachine)
_GOOD_BITS = int(Validity.GOOD)  # a plain int: an enum member lookup costs ~1 µs per cycle


def unit_factor(measurement: Measurement, target: str) -> float:
    """Factor from the measurement's unit to ``"MW"`` (power) or ``"kV"`` (voltage)."""
    unit = measurement.unit or ("MW" if target == "MW" else "kV")
    table = _POWER_UNITS if target == "MW" else _VOLTAGE_UNITS
    if unit not in table:
        raise ValueError(f"measurement {measurement.mrid!r} ({measurement.name}): unit {unit!r} is not a {target} unit")
    return table[unit] * _PREFIX.get(measurement.unit_multiplier, 1.0)


@attrs.frozen
class LiveUpdate:
    """What one :meth:`LiveModel.apply` changed."""

    switches: tuple[str, ...] = ()
    values: int = 0
    pseudo_scale: float | None = None


@attrs.define
class _Binding:
    measurement: Measurement
    equipment: ConductingEquipment
    point: str
    factor: float


class LiveModel:
    """Binds model measurements to points and applies snapshots to the model.

    :param model: the network model.
    :param point_names: points that exist in the point database; measurements naming other
        points are left unbound (listed in :attr:`unbound`).
    """

    def __init__(self, model: NetworkModel, point_names: Iterable[str]) -> None:
        self.model = model
        known = set(point_names)
        self.bindings: list[_Binding] = []
        self.unbound: list[Measurement] = []
        for measurement in model.of_type(Measurement):
            equipment = self._equipment_of(measurement)
            if equipment is None or measurement.point_name not in known:
                self.unbound.append(measurement)
                continue
            self.bindings.append(_Binding(measurement, equipment, measurement.point_name, self._factor(measurement)))
        measured = {id(b.equipment) for b in self.bindings if b.measurement.measurement_type == "ThreePhaseActivePower"}
        self._heads = [
            b for b in self.bindings
            if b.measurement.measurement_type == "ThreePhaseActivePower" and not isinstance(b.equipment, _VALUE_TYPES)
        ]
        self._unmeasured = [load for load in model.of_type(EnergyConsumer) if id(load) not in measured]
        self._nominal = {id(load): (load.p_mw, load.q_mvar) for load in self._unmeasured}
        self._nominal_p = np.array([load.p_mw for load in self._unmeasured], dtype=float)
        self._nominal_q = np.array([load.q_mvar for load in self._unmeasured], dtype=float)
        self._nominal_total = sum(self._nominal_p.tolist())
        self._plan()

    def _plan(self) -> None:
        """Classify the bindings once, so that :meth:`apply` reads all values in one vectorised step
        and only visits the bindings that set a model attribute (a 10,000-bus model has ~10,000
        pseudo-loads, but only a few hundred measurements)."""
        self._points = [b.point for b in self.bindings]
        self._factors = np.array([b.factor for b in self.bindings], dtype=float)
        handled, head, sign, setters = [], [], [], []
        for row, binding in enumerate(self.bindings):
            equipment, kind = binding.equipment, binding.measurement.measurement_type
            action: str | None = None
            target: object = equipment
            if kind == "SwitchPosition" and isinstance(equipment, Switch):
                action = "switch"
            elif kind == "TapPosition" and isinstance(equipment, PowerTransformer):
                action = "tap"
                changers = [self.model.tap_changer(end) for end in self.model.ends(equipment)]
                target = next((c for c in changers if c is not None), None)
            elif kind == "ThreePhaseActivePower":
                action = "p" if isinstance(equipment, _VALUE_TYPES) else "head"
            elif kind == "ThreePhaseReactivePower" and isinstance(equipment, _VALUE_TYPES):
                action = "q"
            elif kind in ("PhaseVoltage", "LineToLineVoltage") and isinstance(equipment, EnergySource):
                action = "u"
            elif kind == "SectionsInService" and isinstance(equipment, LinearShuntCompensator):
                action = "sections"
            handled.append(action is not None)
            head.append(action == "head")
            sign.append(1.0 if action == "p" and isinstance(equipment, EnergyConsumer) else -1.0 if action == "p" and isinstance(equipment, _GENERATING) else 0.0)
            if action not in (None, "head") and target is not None:
                setters.append((row, action, binding.measurement, target))
        self._handled = np.array(handled, dtype=bool)
        self._head = np.array(head, dtype=bool)
        self._load_sign = np.array(sign, dtype=float)
        # value setters grouped per attribute (one tight loop each: a 10,000-meter model writes
        # ~20,000 values per cycle); switches stay one by one (state change detection)
        switches = [(row, measurement, target) for row, action, measurement, target in setters if action == "switch"]
        self._switch_rows = np.array([row for row, _, _ in switches], dtype=np.int64)
        self._switch_binary = np.array([_is_binary(m) for _, m, _ in switches], dtype=bool)
        self._switch_targets = [target for _, _, target in switches]
        self._groups = []
        for action, attribute in _ATTRIBUTE.items():
            chosen = [(row, target) for row, a, _, target in setters if a == action]
            if chosen:
                self._groups.append((attribute, np.array([row for row, _ in chosen], dtype=np.int64), [t for _, t in chosen]))

    def _equipment_of(self, measurement: Measurement) -> ConductingEquipment | None:
        if measurement.terminal and measurement.terminal in self.model:
            terminal = self.model.get(measurement.terminal, Terminal)
            return self.model.get(terminal.conducting_equipment, ConductingEquipment)
        if measurement.power_system_resource and measurement.power_system_resource in self.model:
            resource = self.model.get(measurement.power_system_resource)
            return resource if isinstance(resource, ConductingEquipment) else None
        return None

    @staticmethod
    def _factor(measurement: Measurement) -> float:
        kind = measurement.measurement_type
        if kind in ("ThreePhaseActivePower", "ThreePhaseReactivePower"):
            return unit_factor(measurement, "MW")
        if kind in ("PhaseVoltage", "LineToLineVoltage"):
            return unit_factor(measurement, "kV") * (math.sqrt(3) if kind == "PhaseVoltage" else 1.0)
        return 1.0

    def switch_points(self) -> list[str]:
        """Point names of the switch-position measurements."""
        return [b.point for b in self.bindings if b.measurement.measurement_type == "SwitchPosition" and isinstance(b.equipment, Switch)]

    def apply_switch(self, point: str, value: float, good: bool) -> str | None:
        """Apply one switch-position value; returns the switch mRID if its state changed."""
        if not good or math.isnan(value):
            return None
        for binding in self.bindings:
            if binding.point == point and binding.measurement.measurement_type == "SwitchPosition" and isinstance(binding.equipment, Switch):
                is_open = _switch_open(binding.measurement, value)
                if is_open is not None and is_open != binding.equipment.open:
                    binding.equipment.open = is_open
                    return binding.equipment.mrid
        return None

    def _numbers(self, snapshot) -> np.ndarray:  # noqa: ANN001
        cached = getattr(self, "_numbers_for", None)
        if cached is not None and cached[0] is snapshot.names:  # the kernel's snapshots share one names tuple
            return cached[1]
        number = getattr(snapshot, "number", None)
        if number is None:
            index = {name: n for n, name in enumerate(snapshot.names)}
            number = index.__getitem__
        numbers = np.fromiter(map(number, self._points), dtype=np.int64, count=len(self._points))
        self._numbers_for = (snapshot.names, numbers)
        return numbers

    def apply(self, snapshot) -> LiveUpdate:  # noqa: ANN001 - dms_hookspecs.Snapshot
        """Copy good values from ``snapshot`` into the model; returns what changed."""
        numbers = self._numbers(snapshot)
        raw = np.asarray(snapshot.values, dtype=float)[numbers]
        good = (np.asarray(snapshot.quality)[numbers] & _VALIDITY_MASK) == _GOOD_BITS  # index first: no copy of all points
        good &= raw == raw  # not NaN
        values = raw * self._factors
        heads = good & self._head
        heads_seen = int(np.count_nonzero(heads))
        head_p = sum(values[heads].tolist())
        loads = good & (self._load_sign != 0.0)
        measured_load_p = sum((values[loads] * self._load_sign[loads]).tolist())
        count = int(np.count_nonzero(good & self._handled))
        switches = self._apply_switches(raw, good) if self._switch_targets else []
        for attribute, rows, targets in self._groups:
            ok = good[rows]
            if ok.all():
                _assign(targets, attribute, values[rows].tolist())
            elif ok.any():
                chosen = np.flatnonzero(ok)
                _assign([targets[i] for i in chosen.tolist()], attribute, values[rows[chosen]].tolist())
        scale = self._scale_pseudo_loads(head_p - measured_load_p) if heads_seen else None
        return LiveUpdate(tuple(switches), count, scale)

    def _apply_switches(self, raw: np.ndarray, good: np.ndarray) -> list[str]:
        """Set the switch states the good positions say (:func:`_switch_open`, for all switches at
        once); the mRIDs of the switches whose state changed."""
        rows, binary = self._switch_rows, self._switch_binary
        position = np.rint(raw[rows])
        is_open = np.where(binary, position == 0, position == 1)
        valid = good[rows] & (binary | (position == 1) | (position == 2))  # intermediate/bad positions: unchanged
        changed = valid & (is_open != np.array([target.open for target in self._switch_targets], dtype=bool))
        switches = []
        for i in np.flatnonzero(changed).tolist():
            target = self._switch_targets[i]
            target.open = bool(is_open[i])
            switches.append(target.mrid)
        return switches

    def _scale_pseudo_loads(self, remaining_mw: float) -> float | None:
        if not self._unmeasured or self._nominal_total <= 0:
            return None
        scale = max(remaining_mw, 0.0) / self._nominal_total
        for load, p, q in zip(self._unmeasured, (self._nominal_p * scale).tolist(), (self._nominal_q * scale).tolist(), strict=True):
            load.p_mw = p
            load.q_mvar = q
        return scale


_ATTRIBUTE = {"p": "p_mw", "q": "q_mvar", "tap": "step", "u": "voltage_kv", "sections": "sections"}
"""Setter action -> the model attribute it writes (in this order within one :meth:`LiveModel.apply`)."""


def _assign(targets: list, attribute: str, values: list[float]) -> None:
    """``target.<attribute> = value`` pairwise (direct stores for the frequent power attributes)."""
    if attribute == "p_mw":
        for target, value in zip(targets, values, strict=True):
            target.p_mw = value
    elif attribute == "q_mvar":
        for target, value in zip(targets, values, strict=True):
            target.q_mvar = value
    else:
        for target, value in zip(targets, values, strict=True):
            setattr(target, attribute, value)


def _is_binary(measurement: Measurement) -> bool:
    """A single-point (binary: 0 open, else closed) rather than a double-point position."""
    return isinstance(measurement, Discrete) and measurement.unit == "binary"


def _switch_open(measurement: Measurement, value: float) -> bool | None:
    """Switch state from a position value; ``None`` for intermediate/bad positions."""
    position = int(round(value))
    if _is_binary(measurement):
        return position == 0
    if position == 1:
        return True
    if position == 2:
        return False
    return None

