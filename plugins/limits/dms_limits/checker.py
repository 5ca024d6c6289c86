"""Limit checks with hysteresis: voltage band per voltage level, thermal loading, reverse power flow.

A violation raises an :class:`~dms_hookspecs.Alarm` (category ``limit``) once; it clears (same
alarm id, state ``cleared``) only when the value is back inside the limit by the hysteresis
margin, so a value hovering at the limit does not chatter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from dms_hookspecs import Alarm, AlarmPriority, AlarmState, StudyResult

__all__ = ["LimitSettings", "LimitChecker"]


@attrs.frozen
class LimitSettings:
    """Limits; ``voltage_bands`` maps a nominal voltage in kV to ``(low_pu, high_pu)``."""

    voltage_band: tuple[float, float] = (0.9, 1.1)  # EN 50160: ±10 %
    voltage_bands: Mapping[float, tuple[float, float]] = attrs.field(factory=dict)
    max_loading_percent: float = 100.0
    voltage_hysteresis_pu: float = 0.005
    loading_hysteresis_percent: float = 2.0
    reverse_flow: bool = True
    reverse_flow_threshold_mw: float = 0.001

    def band_for(self, nominal_kv: float) -> tuple[float, float]:
        """The band of the configured voltage level nearest to ``nominal_kv`` (within 10 %)."""
        best = None
        for level, band in self.voltage_bands.items():
            if abs(level - nominal_kv) <= 0.1 * level and (best is None or abs(level - nominal_kv) < abs(best[0] - nominal_kv)):
                best = (level, band)
        return tuple(best[1]) if best else self.voltage_band  # type: ignore[return-value]


@attrs.define
class _Active:
    alarm: Alarm
    limit: float
    above: bool
    reported: bool = False


class LimitChecker:
    """Keeps the active violations of one kernel and turns results into raise/clear alarms."""

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self.active: dict[tuple[str, str, int], _Active] = {}
        self._balanced = True
        self._derived: dict[str, tuple[Any, np.ndarray]] = {}

    def _mask(self, what: str, column: Sequence[Any], value: Any) -> np.ndarray:
        """``column == value`` as a boolean array; cached while a solver hands over the same
        (static) column object every cycle, e.g. the phase and kind columns of a cached network."""
        cached = self._derived.get(what)
        if cached is not None and cached[0] is column:  # the cache holds the column: its id cannot be reused
            return cached[1]
        mask = np.asarray(column, dtype=object if isinstance(value, str) else None) == value
        self._derived[what] = (column, mask)
        return mask

    def check(self, result: StudyResult) -> list[Alarm]:
        """Alarms raised or cleared by this result (power-flow results only)."""
        if result.study != "power_flow" or not result.converged or "nodes" not in result.data:
            return []
        seen: dict[tuple[str, str, int], tuple[float, str]] = {}
        # a balanced result repeats each value on phases 1-3: check phase 1 only, report "all phases"
        self._balanced = not result.data.get("unbalanced", False)
        self._voltages(result.data["nodes"], seen)
        self._branches(result.data.get("branches", {}), seen)
        return self._transitions(seen)

    def _bands(self, nominal_kv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Low and high limit per row, from the nearest configured voltage level (within 10 %)."""
        low = np.full(nominal_kv.shape, self.settings.voltage_band[0])
        high = np.full(nominal_kv.shape, self.settings.voltage_band[1])
        best = np.full(nominal_kv.shape, np.inf)
        for level, (band_low, band_high) in self.settings.voltage_bands.items():
            distance = np.abs(nominal_kv - level)
            use = (distance <= 0.1 * level) & (distance < best)
            low[use], high[use], best[use] = band_low, band_high, distance[use]
        return low, high

    def _voltages(self, nodes: Mapping[str, Sequence[Any]], seen: dict) -> None:
        vm = np.asarray(nodes["vm_pu"], dtype=float)
        if vm.size == 0:
            return
        margin = self.settings.voltage_hysteresis_pu
        if self.settings.voltage_bands:
            with np.errstate(invalid="ignore", divide="ignore"):
                energised = np.isfinite(vm) & (vm > 0.0)  # de-energised nodes are the topology's business
                nominal_kv = np.where(energised, np.asarray(nodes["u_kv"], dtype=float) / vm * math.sqrt(3), 0.0)
            low, high = self._bands(nominal_kv)
            # only rows that violate or sit inside the hysteresis margin need a look (vectorised filter)
            near = energised & ((vm > high - margin) | (vm < low + margin))
        else:
            # one band for every node: scalar limits, no nominal voltages needed (NaN compares False)
            low, high = self.settings.voltage_band
            near = (vm > high - margin) | ((vm < low + margin) & (vm > 0.0))
            near &= vm < math.inf
        if self._balanced:
            near &= self._mask("node_phase_1", nodes["phase"], 1)
        candidates = np.flatnonzero(near)
        if not len(candidates):
            return
        if np.ndim(low) == 0:
            low, high = np.full(vm.shape, low), np.full(vm.shape, high)
        node_ids, names, phases = nodes["node"], nodes["name"], nodes["phase"]
        for row in candidates:
            value = float(vm[row])
            key = ("voltage", str(node_ids[row]), int(phases[row]))
            active = self.active.get(key)
            if active is not None:
                still = value > active.limit - margin if active.above else value < active.limit + margin
                if still:
                    seen[key] = (value, names[row])
            elif value > high[row] or value < low[row]:
                above = value > high[row]
                seen[key] = (value, names[row])
                self._raise(key, value, str(names[row]), float(high[row] if above else low[row]), above)

    def _branches(self, branches: Mapping[str, Sequence[Any]], seen: dict) -> None:
        if not branches or len(branches.get("element", ())) == 0:
            return
        loading = np.asarray(branches["loading_percent"], dtype=float)
        p_from = np.asarray(branches["p_from_mw"], dtype=float)
        kinds = branches["kind"]
        limit = self.settings.max_loading_percent
        first = self._mask("branch_phase_1", branches["phase"], 1) if self._balanced else np.ones(loading.shape, dtype=bool)
        # comparisons with NaN are False without a warning: no errstate needed
        loaded = np.flatnonzero(first & (loading > limit - self.settings.loading_hysteresis_percent))
        transformers = self._mask("transformer", kinds, "PowerTransformer")
        reverse = np.flatnonzero(first & transformers & (p_from < 0.0)) if self.settings.reverse_flow else ()
        elements, names, phases = branches["element"], branches["name"], branches["phase"]
        for row in loaded:
            key = ("loading", str(elements[row]), int(phases[row]))
            value = float(loading[row])
            if key in self.active:
                seen[key] = (value, names[row])
            elif value > limit:
                seen[key] = (value, names[row])
                self._raise(key, value, str(names[row]), limit, True, str(kinds[row]))
        for row in reverse:
            key = ("reverse", str(elements[row]), int(phases[row]))
            value = float(p_from[row])
            if value < -self.settings.reverse_flow_threshold_mw:
                seen[key] = (value, names[row])
                if key not in self.active:
                    self._raise(key, value, str(names[row]), 0.0, False, str(kinds[row]))
            elif key in self.active:
                seen[key] = (value, names[row])  # hysteresis: clears only once flow is forward again

    def _raise(self, key: tuple[str, str, int], value: float, name: str, limit: float, above: bool, kind: str = "") -> None:
        what, element, phase = key
        label = name or element
        where = "all phases" if self._balanced else f"phase {phase}"
        if what == "voltage":
            message = f"voltage {value:.3f} pu at node {label!r} {where} {'above' if above else 'below'} {limit:.3f} pu"
            priority = AlarmPriority.HIGH
        elif what == "loading":
            message = f"{kind or 'branch'} {label!r} {where} loaded {value:.1f} % (limit {limit:g} %)"
            priority = AlarmPriority.HIGH if value > 1.2 * limit else AlarmPriority.MEDIUM
        else:
            total = -value * 3 if self._balanced else -value  # balanced rows carry a third of the power
            message = f"reverse power flow {total:.3f} MW through transformer {label!r}"
            priority = AlarmPriority.LOW
        self.active[key] = _Active(Alarm(message, priority, source="limits", category="limit"), limit, above)

    def _transitions(self, seen: dict[tuple[str, str, int], tuple[float, str]]) -> list[Alarm]:
        alarms = []
        for key in list(self.active):
            active = self.active[key]
            if key not in seen:
                alarms.append(attrs.evolve(active.alarm, state=AlarmState.CLEARED, message=f"cleared: {active.alarm.message}", time=time.time()))
                del self.active[key]
            elif not active.reported:
                alarms.append(active.alarm)
                active.reported = True
        return alarms

