"""Measurement planning for state estimation: model measurements -> estimator-neutral rows.

A :class:`MeasurementPlan` is built once per model (and set of known points): every Analog
measurement of a supported type becomes a :class:`Row` with its location in model terms

* ``v`` — voltage magnitude at a node (``PhaseVoltage``/``LineToLineVoltage``/``Voltage``);
* ``va`` — voltage angle at a node in degrees (``PhaseVoltageAngle``/``VoltageAngle``: a PMU's
  phasor angle, paired with a magnitude at the same node);
* ``p``/``q`` at a branch terminal (line, transformer; side from the measurement's terminal);
* ``p``/``q`` of an injection (load, PV/battery inverter, machine: a meter);
* ``i`` — current magnitude at a line or transformer terminal (``LineCurrent``/``Current``).

:meth:`MeasurementPlan.values` reads one snapshot in a vectorised step and returns the usable
values (validity good or questionable, not flagged inconsistent, not NaN) in MW/Mvar/kV/kA with
their standard deviations from :class:`Accuracy`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from dms_hookspecs import Detail, Validity
from dms_hookspecs.quality import _VALIDITY_MASK
from dms_kernel.model import (
    ACLineSegment,
    Analog,
    ConductingEquipment,
    EnergyConsumer,
    NetworkModel,
    PowerElectronicsConnection,
    PowerTransformer,
    SynchronousMachine,
    Terminal,
)
from dms_kernel.model.live import unit_factor

__all__ = ["Accuracy", "Row", "MeasurementPlan", "usable_mask", "DEFAULT_STD"]

#: relative standard deviations per measurement type (fraction of the value)
DEFAULT_STD = {"voltage": 0.005, "power": 0.02, "current": 0.02, "pseudo": 0.3, "forecast": 0.1, "phasor": 0.001}
#: absolute floors (pu for voltage, MW/Mvar for power, kA for current): a value near zero keeps a finite weight
DEFAULT_FLOOR = {"voltage": 0.001, "power": 0.002, "current": 0.001, "pseudo": 0.01, "forecast": 0.005, "phasor": 0.0002}

_VOLTAGE = {"PhaseVoltage", "LineToLineVoltage", "Voltage"}
_ANGLE = {"PhaseVoltageAngle", "VoltageAngle"}  #: a synchrophasor's angle (degrees, positive sequence / phase A)
_CURRENT = {"LineCurrent", "Current"}
_POWER = {"ThreePhaseActivePower": "p", "ThreePhaseReactivePower": "q", "ActivePower": "p", "ReactivePower": "q"}
_INJECTION = (EnergyConsumer, PowerElectronicsConnection, SynchronousMachine)
_GENERATING = (PowerElectronicsConnection, SynchronousMachine)
_CURRENT_UNITS = {"A": 1e-3, "kA": 1.0}
_BAD_DETAIL = int(Detail.INCONSISTENT)


@attrs.frozen
class Accuracy:
    """Standard deviations: relative per type, absolute floors, per-point overrides (relative)."""

    relative: Mapping[str, float] = attrs.field(factory=lambda: dict(DEFAULT_STD))
    floor: Mapping[str, float] = attrs.field(factory=lambda: dict(DEFAULT_FLOOR))
    points: Mapping[str, float] = attrs.field(factory=dict)

    @classmethod
    def from_settings(cls, *sources: Mapping[str, Any] | None) -> Accuracy:
        """Merge ``std_dev``/``std_floor``/``point_std_dev`` tables (later sources win)."""
        relative, floor, points = dict(DEFAULT_STD), dict(DEFAULT_FLOOR), {}
        for source in sources:
            if not source:
                continue
            for key, value in dict(source.get("std_dev") or {}).items():
                if key not in DEFAULT_STD:
                    raise ValueError(f"[settings.se] std_dev: unknown measurement type {key!r} (known: {sorted(DEFAULT_STD)})")
                relative[key] = float(value)
            for key, value in dict(source.get("std_floor") or {}).items():
                if key not in DEFAULT_FLOOR:
                    raise ValueError(f"[settings.se] std_floor: unknown measurement type {key!r}")
                floor[key] = float(value)
            points.update({str(k): float(v) for k, v in dict(source.get("point_std_dev") or {}).items()})
        return cls(relative, floor, points)

    def sigma(self, category: str, values: np.ndarray, names: Iterable[str] | None = None) -> np.ndarray:
        """Standard deviations of ``values`` (relative x |value|, at least the floor)."""
        rel = np.full(len(values), self.relative[category])
        if names is not None and self.points:
            for k, name in enumerate(names):
                if name in self.points:
                    rel[k] = self.points[name]
        return np.maximum(rel * np.abs(values), self.floor[category])


@attrs.define
class Row:
    """One measurement in model terms."""

    point: str
    kind: str  #: v, p, q, i
    where: str  #: node, branch, injection
    target: str  #: node mRID (v) or equipment mRID
    side: int = 0  #: branch terminal index (0 = from/hv, 1 = to/lv)
    factor: float = 1.0  #: point unit -> kV (ph-ph), MW, Mvar, kA
    sign: float = 1.0  #: injections: +1 consumption (load convention), -1 generation


def usable_mask(bits: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Good or questionable, not flagged inconsistent (bad data), not NaN."""
    validity = bits & _VALIDITY_MASK
    return ((validity == Validity.GOOD) | (validity == Validity.QUESTIONABLE)) & ((bits & _BAD_DETAIL) == 0) & ~np.isnan(values)


class MeasurementPlan:
    """The model's state-estimation measurements, classified once.

    :param model: the network model.
    :param point_names: points of the point database (rows naming other points are dropped).
    """

    def __init__(self, model: NetworkModel, point_names: Iterable[str] | None = None) -> None:
        known = set(point_names) if point_names is not None else None
        self.rows: list[Row] = []
        self.skipped: list[tuple[str, str]] = []  #: (point, why)
        for measurement in model.of_type(Analog):
            row = self._row(model, measurement)
            if row is None:
                continue
            if isinstance(row, str):
                self.skipped.append((measurement.point_name, row))
                continue
            if known is not None and row.point not in known:
                continue
            self.rows.append(row)
        self.points = [r.point for r in self.rows]
        self.factors = np.array([r.factor for r in self.rows], dtype=float)
        self.kinds = np.array([r.kind for r in self.rows], dtype=object)
        self.object_count = len(model.objects)
        self._numbers: tuple[Any, np.ndarray] | None = None  #: (names of the snapshot, point numbers of the rows)

    @staticmethod
    def _equipment(model: NetworkModel, measurement: Analog) -> tuple[ConductingEquipment | None, Terminal | None]:
        terminal = None
        if measurement.terminal and measurement.terminal in model:
            terminal = model.get(measurement.terminal, Terminal)
            return model.get(terminal.conducting_equipment, ConductingEquipment), terminal
        if measurement.power_system_resource and measurement.power_system_resource in model:
            resource = model.get(measurement.power_system_resource)
            if isinstance(resource, ConductingEquipment):
                return resource, None
        return None, None

    def _row(self, model: NetworkModel, m: Analog) -> Row | str | None:
        kind = m.measurement_type
        if kind not in _VOLTAGE and kind not in _CURRENT and kind not in _POWER and kind not in _ANGLE:
            return None
        equipment, terminal = self._equipment(model, m)
        if equipment is None:
            return "no equipment/terminal"
        point = m.point_name
        if kind in _VOLTAGE or kind in _ANGLE:
            if terminal is None:
                terms = model.terminals(equipment)
                terminal = terms[0] if terms else None
            node = model.node_of(terminal) if terminal is not None else None
            if node is None:
                return "voltage measurement without a node"
            if kind in _ANGLE:
                return Row(point, "va", "node", node, factor=1.0 if (m.unit or "deg") in ("deg", "") else 180.0 / math.pi)
            factor = unit_factor(m, "kV") * (math.sqrt(3) if kind == "PhaseVoltage" else 1.0)
            return Row(point, "v", "node", node, factor=factor)
        side = 0
        if terminal is not None and terminal.mrid in equipment.terminals:
            side = equipment.terminals.index(terminal.mrid)
        if kind in _CURRENT:
            if not isinstance(equipment, ACLineSegment | PowerTransformer):
                return f"current measurement on {type(equipment).__name__} (only lines and transformers)"
            unit = m.unit or "A"
            if unit not in _CURRENT_UNITS:
                return f"current unit {unit!r}"
            prefix = {"k": 1e3, "": 1.0, "none": 1.0}.get(m.unit_multiplier, 1.0)
            return Row(point, "i", "branch", equipment.mrid, side, _CURRENT_UNITS[unit] * prefix)
        quantity = _POWER[kind]
        factor = unit_factor(m, "MW")
        if isinstance(equipment, _INJECTION):
            sign = -1.0 if isinstance(equipment, _GENERATING) else 1.0
            return Row(point, quantity, "injection", equipment.mrid, factor=factor, sign=sign)
        if isinstance(equipment, ACLineSegment | PowerTransformer):
            return Row(point, quantity, "branch", equipment.mrid, side, factor)
        return f"power measurement on {type(equipment).__name__}"

    def values(self, snapshot: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(values, usable)``: engineering values (kV ph-ph, MW, Mvar, kA) and the usable mask."""
        if not self.rows:
            return np.zeros(0), np.zeros(0, dtype=bool)
        cached = self._numbers
        if cached is not None and cached[0] is snapshot.names:  # the same point set (the kernel shares it)
            numbers = cached[1]
        else:
            number = getattr(snapshot, "number", None)
            if number is None:
                index = {name: n for n, name in enumerate(snapshot.names)}
                number = index.__getitem__
            numbers = np.fromiter(map(number, self.points), dtype=np.int64, count=len(self.points))
            self._numbers = (snapshot.names, numbers)
        raw = np.asarray(snapshot.values, dtype=float)[numbers]
        bits = np.asarray(snapshot.quality, dtype=np.int64)[numbers]
        return raw * self.factors, usable_mask(bits, raw)
