"""What the alarm manager listens to in a running kernel.

* **events on the bus**: :class:`~dms_hookspecs.Alarm` events of every plugin (limits, comms,
  scheduler, state estimation, …) → conditions; :class:`~dms_hookspecs.Command` (remembered,
  to tell a commanded opening from a trip); :class:`~dms_hookspecs.CommandResult` failures →
  ``command`` alarms; :class:`~dms_hookspecs.TopologyChanged` → state-based suppression
  re-evaluated.
* **the point database** (a subscription on reported changes): quality of every point
  (one ``quality`` alarm per source while any of its points is invalid), switch positions
  (``protection`` alarm when a switch opens without a command) and configured point limits
  (with deadband).
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dms_hookspecs import Alarm, AlarmPriority, Command, CommandResult, CommandStatus, PointKind, TopologyChanged

from .config import PLUGIN_NAME, AlarmSettings, PointLimit
from .manager import AlarmManager

__all__ = ["KernelFeed", "EVENT_TYPES"]

log = logging.getLogger("leitstand.alarms")

EVENT_TYPES = (Alarm, Command, CommandResult, TopologyChanged)

_FAILED = {CommandStatus.FAILED: "failed", CommandStatus.TIMEOUT: "timed out", CommandStatus.REJECTED: "was rejected"}
_VALIDITY_MASK = 0b11
_INVALID = 0b01
_OPEN, _CLOSED = 1, 2  # IEC 61850 DPS


class KernelFeed:
    """Turns a kernel's events and point changes into manager conditions.

    :param kernel: the started kernel.
    :param manager: the alarm manager.
    :param settings: checked settings.
    """

    def __init__(self, kernel: Any, manager: AlarmManager, settings: AlarmSettings) -> None:
        self.kernel = kernel
        self.manager = manager
        self.settings = settings
        self.points = kernel.points
        self._own: collections.OrderedDict[int, Any] = collections.OrderedDict()
        self._commands: collections.OrderedDict[str, Command] = collections.OrderedDict()
        self._last_open_command: dict[str, float] = {}
        self._pending_trips: dict[int, float] = {}
        self._subscription = None
        count = len(self.points)
        # quality: which points are invalid, counted per owning source
        self._sources = sorted(getattr(kernel, "sources", {}))
        self._owner_index = np.full(count, -1, dtype=np.int64)
        for index, source in enumerate(self._sources):
            self._owner_index[self.points.owned_by(source)] = index
        self._invalid = np.zeros(count, dtype=bool)
        self._invalid_count = np.zeros(len(self._sources), dtype=np.int64)
        # switches: points whose opening is a trip unless commanded
        switch_names: set[str] = set()
        live = getattr(kernel, "live", None)
        if live is not None:
            switch_names.update(live.switch_points())
        for number in range(count):
            if self.points.spec(number).kind is PointKind.DOUBLE:  # double-point status: switchgear positions
                switch_names.add(self.points.names[number])
        self._switch_kind: dict[int, PointKind] = {}
        for name in switch_names:
            number = self.points.number(name)
            self._switch_kind[number] = self.points.spec(number).kind
        self._switch_state: dict[int, bool | None] = {}
        # point limits
        self._limits: dict[int, list[PointLimit]] = {}
        self._limit_active: dict[tuple[int, str], bool] = {}
        for limit in settings.point_limits:
            if limit.point not in self.points:
                raise ValueError(f"[settings.alarms] point_limits: point {limit.point!r} is not declared by any source")
            self._limits.setdefault(self.points.number(limit.point), []).append(limit)

    # -- wiring ------------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the bus and the point database."""
        self.kernel.bus.subscribe("alarms", self.handle, EVENT_TYPES, 100_000)
        if len(self.points):
            self._subscription = self.points.subscribe(None, self.on_points)

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    def emit(self, event: Any) -> None:
        """Emit one of the manager's events, remembering it so that its echo is not re-processed."""
        if isinstance(event, Alarm):
            self._own[id(event)] = event
            while len(self._own) > 50_000:
                self._own.popitem(last=False)
        self.kernel.emit(event)

    # -- bus ---------------------------------------------------------------------------------

    async def handle(self, events: Sequence[Any]) -> None:
        topology_changed = False
        for event in events:
            if isinstance(event, Alarm):
                if self._own.pop(id(event), None) is event:
                    continue
                self.manager.process(event)
            elif isinstance(event, Command):
                self._remember(event)
            elif isinstance(event, CommandResult):
                self._on_result(event)
            elif isinstance(event, TopologyChanged):
                topology_changed = True
        if topology_changed:
            self.manager.reevaluate_state()

    def _remember(self, command: Command) -> None:
        self._commands[command.id] = command
        while len(self._commands) > 10_000:
            self._commands.popitem(last=False)
        target = command.target.name
        if target in self.points and self.points.number(target) in self._switch_kind and self._commands_open(target, command.value):
            self._last_open_command[target] = command.created

    def _commands_open(self, target: str, value: float) -> bool:
        kind = self._switch_kind.get(self.points.number(target))
        return int(round(value)) == (0 if kind is PointKind.BINARY else _OPEN)

    def _on_result(self, result: CommandResult) -> None:
        verb = _FAILED.get(result.status)
        if verb is None or (result.status is CommandStatus.REJECTED and result.step not in ("select", "operate")):
            return  # succeeded, or refused by authorisation/interlocks/routing: operator feedback, not an alarm
        command = self._commands.get(result.command_id)
        target = command.target.name if command is not None else ""
        what = f"command {command.value:g} on {target!r} by {command.originator}" if command is not None else f"command {result.command_id}"
        self.manager.raise_condition(
            source=self.points.owner(target) if target in self.points else "kernel",
            category="command",
            message=f"{what} {verb} at {result.step}: {result.reason}",
            priority=AlarmPriority.HIGH,
            point=target or None,
            subject=f"command:{target or result.command_id}",
        )

    # -- point database ------------------------------------------------------------------------

    def on_points(self, changed: np.ndarray) -> None:
        """Reported changes of points (called synchronously by the point database)."""
        changed = changed[changed < self._invalid.size]
        if not changed.size:
            return
        if self.settings.quality_alarms:
            self._check_quality(changed)
        if self._switch_kind:
            for number in changed.tolist():
                if number in self._switch_kind:
                    self._check_switch(number)
        if self._limits:
            for number in changed.tolist():
                if number in self._limits:
                    self._check_limits(number)

    def _check_quality(self, changed: np.ndarray) -> None:
        quality = self.points.quality(changed)
        invalid = (quality & _VALIDITY_MASK) == _INVALID
        flipped = changed[invalid != self._invalid[changed]]
        if not flipped.size:
            return
        self._invalid[changed] = invalid
        owners = self._owner_index[flipped]
        signs = np.where(self._invalid[flipped], 1, -1)
        np.add.at(self._invalid_count, owners, signs)
        for owner in np.unique(owners).tolist():
            source = self._sources[owner]
            count = int(self._invalid_count[owner])
            if count > 0:
                members = np.flatnonzero(self._owner_index == owner)
                bad = members[self._invalid[members]]
                examples = ", ".join(str(n) for n in self.points.names_of(bad[:3])) + (", …" if bad.size > 3 else "")
                self.manager.raise_condition(
                    source=source, category="quality", subject=f"quality:{source}", priority=AlarmPriority.MEDIUM,
                    message=f"{count} of {members.size} points of {source!r} invalid ({examples})",
                )
            else:
                self.manager.clear_condition(source=source, category="quality", subject=f"quality:{source}")

    def _check_switch(self, number: int) -> None:
        measurement = self.points.read(number)
        if not measurement.quality.is_good and measurement.quality.validity.name != "QUESTIONABLE":
            return
        if math.isnan(measurement.value):
            return
        position = int(round(measurement.value))
        if self._switch_kind[number] is PointKind.BINARY:
            is_open = position == 0
        else:
            is_open = True if position == _OPEN else False if position == _CLOSED else None
        if is_open is None:
            return
        before = self._switch_state.get(number)
        self._switch_state[number] = is_open
        name = measurement.point.name
        if is_open and before is False and self.settings.protection.enabled:
            self._pending_trips[number] = self.manager.clock()
        elif not is_open:
            self._pending_trips.pop(number, None)
            commanded = self._last_open_command.get(name)
            if commanded is not None and commanded <= self.manager.clock():
                del self._last_open_command[name]  # an earlier opening command explains no later opening
            if before is True:
                self.manager.clear_condition(source=PLUGIN_NAME, category="protection", point=name)

    def tick(self) -> None:
        """Decide pending trips whose grace time has passed."""
        if not self._pending_trips:
            return
        now = self.manager.clock()
        protection = self.settings.protection
        for number, opened in list(self._pending_trips.items()):
            name = self.points.names[number]
            commanded = self._last_open_command.get(name)
            if commanded is not None and opened - protection.command_window_s <= commanded <= opened + protection.grace_s:
                del self._pending_trips[number]
                log.info("switch %r opened by command: no trip alarm", name)
                continue
            if now - opened < protection.grace_s:
                continue
            del self._pending_trips[number]
            self.manager.raise_condition(
                source=PLUGIN_NAME, category="protection", point=name, priority=protection.priority,
                message=f"switch {name!r} opened without a command (protection trip)",
            )

    def _check_limits(self, number: int) -> None:
        measurement = self.points.read(number)
        value = measurement.value
        if math.isnan(value) or measurement.quality.validity.name == "INVALID":
            return
        name = measurement.point.name
        for limit in self._limits[number]:
            for side, threshold in (("high", limit.high), ("low", limit.low)):
                if threshold is None:
                    continue
                key = (number, f"{side}:{threshold}")
                active = self._limit_active.get(key, False)
                beyond = value > threshold if side == "high" else value < threshold
                inside = value < threshold - limit.deadband if side == "high" else value > threshold + limit.deadband
                subject = f"limit:{name}:{side}:{threshold:g}"
                unit = self.points.spec(number).unit
                if not active and beyond:
                    self._limit_active[key] = True
                    word = "above" if side == "high" else "below"
                    self.manager.raise_condition(
                        source=PLUGIN_NAME, category=limit.category, point=name, subject=subject, priority=limit.priority,
                        message=f"{name} = {value:g} {unit} {word} {side} limit {threshold:g} {unit}".replace("  ", " "),
                    )
                elif active and inside:
                    self._limit_active[key] = False
                    self.manager.clear_condition(source=PLUGIN_NAME, category=limit.category, point=name, subject=subject)

