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

    def check(self, result: StudyResult) -> list[Alarm]:
        """Alarms raised or cleared by this result (power-flow results only)."""
        if result.study != "power_flow" or not result.converged or "nodes" not in result.data:
            return []
        seen: dict[tuple[str, str, int], tuple[float, str]] = {}
        self._voltages(result.data["nodes"], seen)
        self._branches(result.data.get("branches", {}), seen)
        return self._transitions(seen)

    def _voltages(self, nodes: Mapping[str, Sequence[Any]], seen: dict) -> None:
        for node, name, phase, vm, u_kv in zip(nodes["node"], nodes["name"], nodes["phase"], nodes["vm_pu"], nodes["u_kv"], strict=True):
            if vm is None or math.isnan(vm) or vm <= 0.0:
                continue  # de-energised: handled by topology, not a voltage violation
            nominal_kv = u_kv / vm * math.sqrt(3)
            low, high = self.settings.band_for(nominal_kv)
            key = ("voltage", node, int(phase))
            active = self.active.get(key)
            if active is not None:
                margin = self.settings.voltage_hysteresis_pu
                still = vm > active.limit - margin if active.above else vm < active.limit + margin
                if still:
                    seen[key] = (vm, name)
                continue
            if vm > high or vm < low:
                seen[key] = (vm, name)
                self._raise(key, vm, name, high if vm > high else low, vm > high)

    def _branches(self, branches: Mapping[str, Sequence[Any]], seen: dict) -> None:
        if not branches or not branches.get("element"):
            return
        columns = zip(branches["element"], branches["name"], branches["kind"], branches["phase"],
                      branches["loading_percent"], branches["p_from_mw"], strict=True)
        for element, name, kind, phase, loading, p_from in columns:
            if loading is not None and not math.isnan(loading):
                key = ("loading", element, int(phase))
                limit = self.settings.max_loading_percent
                active = self.active.get(key)
                if active is not None:
                    if loading > limit - self.settings.loading_hysteresis_percent:
                        seen[key] = (loading, name)
                elif loading > limit:
                    seen[key] = (loading, name)
                    self._raise(key, loading, name, limit, True, kind)
            if self.settings.reverse_flow and kind == "PowerTransformer" and p_from is not None and not math.isnan(p_from):
                key = ("reverse", element, int(phase))
                if p_from < -self.settings.reverse_flow_threshold_mw:
                    seen[key] = (p_from, name)
                    if key not in self.active:
                        self._raise(key, p_from, name, 0.0, False, kind)
                elif key in self.active and p_from < 0.0:
                    seen[key] = (p_from, name)  # hysteresis: clears only once flow is forward again

    def _raise(self, key: tuple[str, str, int], value: float, name: str, limit: float, above: bool, kind: str = "") -> None:
        what, element, phase = key
        label = name or element
        if what == "voltage":
            message = f"voltage {value:.3f} pu at node {label!r} phase {phase} {'above' if above else 'below'} {limit:.3f} pu"
            priority = AlarmPriority.HIGH
        elif what == "loading":
            message = f"{kind or 'branch'} {label!r} phase {phase} loaded {value:.1f} % (limit {limit:g} %)"
            priority = AlarmPriority.HIGH if value > 1.2 * limit else AlarmPriority.MEDIUM
        else:
            message = f"reverse power flow {-value:.3f} MW through transformer {label!r}"
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

