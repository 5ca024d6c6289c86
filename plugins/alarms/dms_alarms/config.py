"""``[settings.alarms]``: the schema the kernel checks, and the nested tables checked here.

The kernel validates the top-level keys and their types; this module checks the nested
tables (alarm classes, point limits, suppression rules, notifiers, escalation steps, flood and
protection settings) and the references between them. Every problem is a
:class:`~dms_kernel.errors.ConfigError` naming the deployment file, the table
(``settings.alarms.escalation[1]``) and the key.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from typing import Any

import attrs

from dms_hookspecs import REQUIRED, AlarmPriority, Setting, SettingsSchema
from dms_kernel.config import validate_table
from dms_kernel.errors import ConfigError

__all__ = [
    "PLUGIN_NAME",
    "SCHEMA",
    "AlarmClass",
    "PointLimit",
    "SuppressRule",
    "NotifierConfig",
    "EscalationStep",
    "FloodSettings",
    "ProtectionSettings",
    "AlarmSettings",
    "parse_priority",
]

PLUGIN_NAME = "alarms"
PRIORITIES = tuple(p.name.lower() for p in AlarmPriority)

SCHEMA = SettingsSchema(
    (
        Setting("tick_s", float, 1.0, "how often delays, shelving expiry, chatter, flood and escalation are evaluated"),
        Setting("classes", dict, {}, "alarm classes by category: priority, on/off delay, deadband, chatter, auto clear"),
        Setting("positions", dict, {}, 'operator positions: { north = ["rtu-n*", "S1/*"] } (globs on source or point)'),
        Setting("default_position", str, "control-room", "position of alarms no position pattern matches"),
        Setting("point_limits", list, [], "analogue limits on SCADA points, with deadband"),
        Setting("suppress", list, [], 'engineering suppression rules: [{ category = "overrun" }, { source = "test-*" }]'),
        Setting("quality_alarms", bool, True, "alarm when points of a source become invalid (one alarm per source)"),
        Setting("state_suppression", bool, True, "suppress alarms on de-energised equipment (topology processor)"),
        Setting("max_shelve_s", float, 8 * 3600.0, "longest an operator may shelve an alarm"),
        Setting("flood", dict, {}, "flood detection: window_s, start, end, suppress_priorities"),
        Setting("protection", dict, {}, "protection trips: enabled, command_window_s, grace_s"),
        Setting("notifiers", dict, {}, "notifier instances by name: { type, settings, retries, backoff_s, backoff_max_s }"),
        Setting("escalation", list, [], "escalation steps: { priority, unacknowledged_for_s, notify, category }"),
    )
)

_CLASS = SettingsSchema(
    (
        Setting("priority", str, None, "overrides the priority of the raising plugin", choices=PRIORITIES),
        Setting("on_delay_s", float, 0.0, "the condition must persist this long before the alarm is raised"),
        Setting("off_delay_s", float, 0.0, "the condition must be gone this long before the alarm returns to normal"),
        Setting("deadband", float, 0.0, "default deadband of point limits of this class (point unit)"),
        Setting("chatter_count", int, 5, "transitions within chatter_window_s that make an alarm chattering (0: off)"),
        Setting("chatter_window_s", float, 60.0, "window of the chatter count; suppression ends after this long quiet"),
        Setting("auto_clear_s", float, None, "return to normal when not raised again for this long (0: momentary event)"),
        Setting("state_suppression", bool, True, "suppress when the alarm's equipment is de-energised"),
    )
)

_POINT_LIMIT = SettingsSchema(
    (
        Setting("point", str, REQUIRED, "SCADA point name"),
        Setting("high", float, None, "alarm above this value"),
        Setting("low", float, None, "alarm below this value"),
        Setting("deadband", float, None, "the alarm clears only this far inside the limit (default: the class's)"),
        Setting("priority", str, "medium", "alarm priority", choices=PRIORITIES),
        Setting("category", str, "point-limit", "alarm class"),
    )
)

_SUPPRESS = SettingsSchema(
    (
        Setting("source", str, None, "glob on the raising source"),
        Setting("category", str, None, "glob on the category"),
        Setting("point", str, None, "glob on the point name"),
        Setting("reason", str, "engineering", "shown to operators"),
    )
)

_NOTIFIER = SettingsSchema(
    (
        Setting("type", str, REQUIRED, "notifier type registered through dms_add_notifier_types"),
        Setting("settings", dict, {}, "settings of that type"),
        Setting("retries", int, 3, "further attempts after a failed one"),
        Setting("backoff_s", float, 1.0, "wait before the first retry; doubles each retry"),
        Setting("backoff_max_s", float, 60.0, "longest wait between attempts"),
    )
)

_STEP = SettingsSchema(
    (
        Setting("priority", str, REQUIRED, "priority this step applies to, or \"any\"", choices=PRIORITIES + ("any",)),
        Setting("unacknowledged_for_s", float, REQUIRED, "notify when the alarm is unacknowledged this long"),
        Setting("notify", list, REQUIRED, "names of notifier instances ([settings.alarms.notifiers.<name>])"),
        Setting("category", str, None, "only alarms of this category (glob)"),
    )
)

_FLOOD = SettingsSchema(
    (
        Setting("window_s", float, 600.0, "counting window (ISA-18.2: 10 minutes)"),
        Setting("start", int, 10, "alarms per position within the window that start a flood"),
        Setting("end", int, 5, "the flood ends when the count falls below this"),
        Setting("suppress_priorities", list, [], 'during a flood, suppress new alarms of these priorities, e.g. ["low"]'),
    )
)

_PROTECTION = SettingsSchema(
    (
        Setting("enabled", bool, True, "alarm when a switch opens without a command"),
        Setting("command_window_s", float, 30.0, "an open command this recent explains the opening"),
        Setting("grace_s", float, 1.0, "wait this long for the command event before alarming"),
        Setting("priority", str, "high", "trip alarm priority", choices=PRIORITIES),
    )
)

#: built-in classes; a [settings.alarms.classes.<category>] table overrides the keys it names
DEFAULT_CLASSES: Mapping[str, Mapping[str, Any]] = {
    "command": {"auto_clear_s": 0.0},
    "overrun": {"auto_clear_s": 0.0},
    "study-failure": {"auto_clear_s": 0.0},
    "bus-overflow": {"auto_clear_s": 0.0},
    "sink-failure": {"auto_clear_s": 0.0},
    "notification": {"auto_clear_s": 0.0, "priority": "high"},
    "bad-data": {"auto_clear_s": 120.0},
    "protection": {"state_suppression": False},
    "flood": {"state_suppression": False, "chatter_count": 0},
}


def parse_priority(name: str) -> AlarmPriority:
    return AlarmPriority[name.upper()]


@attrs.frozen
class AlarmClass:
    """Handling of one alarm category (ISA-18.2 alarm class)."""

    name: str = "default"
    priority: AlarmPriority | None = None
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    deadband: float = 0.0
    chatter_count: int = 5
    chatter_window_s: float = 60.0
    auto_clear_s: float | None = None
    state_suppression: bool = True


@attrs.frozen
class PointLimit:
    point: str
    high: float | None
    low: float | None
    deadband: float
    priority: AlarmPriority
    category: str


@attrs.frozen
class SuppressRule:
    source: str | None = None
    category: str | None = None
    point: str | None = None
    reason: str = "engineering"

    def matches(self, source: str, category: str, point: str | None) -> bool:
        for pattern, value in ((self.source, source), (self.category, category), (self.point, point)):
            if pattern is not None and (value is None or not fnmatch.fnmatchcase(value, pattern)):
                return False
        return True


@attrs.frozen
class NotifierConfig:
    name: str
    type: str
    settings: Mapping[str, Any]
    retries: int
    backoff_s: float
    backoff_max_s: float
    table: str


@attrs.frozen
class EscalationStep:
    """One step: notify ``notify`` when a matching alarm is unacknowledged for ``delay_s``."""

    index: int
    priority: AlarmPriority | None  # None: any priority
    delay_s: float
    notify: tuple[str, ...]
    category: str | None = None

    def applies_to(self, priority: AlarmPriority, category: str) -> bool:
        if self.priority is not None and priority is not self.priority:
            return False
        return self.category is None or fnmatch.fnmatchcase(category, self.category)


@attrs.frozen
class FloodSettings:
    window_s: float = 600.0
    start: int = 10
    end: int = 5
    suppress_priorities: frozenset[AlarmPriority] = frozenset()


@attrs.frozen
class ProtectionSettings:
    enabled: bool = True
    command_window_s: float = 30.0
    grace_s: float = 1.0
    priority: AlarmPriority = AlarmPriority.HIGH


@attrs.frozen
class AlarmSettings:
    """Everything of ``[settings.alarms]``, checked."""

    tick_s: float = 1.0
    classes: Mapping[str, AlarmClass] = attrs.field(factory=dict)
    positions: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    default_position: str = "control-room"
    point_limits: tuple[PointLimit, ...] = ()
    suppress: tuple[SuppressRule, ...] = ()
    quality_alarms: bool = True
    state_suppression: bool = True
    max_shelve_s: float = 8 * 3600.0
    flood: FloodSettings = FloodSettings()
    protection: ProtectionSettings = ProtectionSettings()
    notifiers: Mapping[str, NotifierConfig] = attrs.field(factory=dict)
    escalation: tuple[EscalationStep, ...] = ()

    def class_for(self, category: str) -> AlarmClass:
        found = self.classes.get(category)
        if found is not None:
            return found
        return self.classes.get("default") or AlarmClass()

    def position_of(self, source: str, point: str | None) -> str:
        for position, patterns in self.positions.items():
            for pattern in patterns:
                if fnmatch.fnmatchcase(source, pattern) or (point is not None and fnmatch.fnmatchcase(point, pattern)):
                    return position
        return self.default_position

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any], file: str = "<settings>") -> AlarmSettings:
        """Check the validated ``[settings.alarms]`` table (defaults filled by the kernel).

        :raises ConfigError: naming ``settings.alarms...`` and the key.
        """
        base = validate_table(dict(raw), SCHEMA, file, "settings.alarms")
        table = "settings.alarms"

        def positive(value: float | None, where: str, key: str, allow_zero: bool = True) -> None:
            if value is None:
                return
            if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
                raise ConfigError(file, where, key, f"must be {'≥ 0' if allow_zero else '> 0'}, got {value!r}")

        positive(base["tick_s"], table, "tick_s", allow_zero=False)
        positive(base["max_shelve_s"], table, "max_shelve_s", allow_zero=False)

        classes: dict[str, AlarmClass] = {}
        merged = {name: dict(values) for name, values in DEFAULT_CLASSES.items()}
        for name, values in base["classes"].items():  # a table overrides the built-in keys it names
            merged[name] = {**merged.get(name, {}), **values} if isinstance(values, Mapping) else values
        for name, values in merged.items():
            where = f"{table}.classes.{name}"
            checked = validate_table(values, _CLASS, file, where)
            for key in ("on_delay_s", "off_delay_s", "deadband", "chatter_window_s", "auto_clear_s"):
                positive(checked[key], where, key)
            if checked["chatter_count"] < 0:
                raise ConfigError(file, where, "chatter_count", f"must be ≥ 0, got {checked['chatter_count']}")
            classes[name] = AlarmClass(
                name=name,
                priority=parse_priority(checked["priority"]) if checked["priority"] else None,
                on_delay_s=checked["on_delay_s"],
                off_delay_s=checked["off_delay_s"],
                deadband=checked["deadband"],
                chatter_count=checked["chatter_count"],
                chatter_window_s=checked["chatter_window_s"],
                auto_clear_s=checked["auto_clear_s"],
                state_suppression=checked["state_suppression"],
            )

        positions: dict[str, tuple[str, ...]] = {}
        for name, patterns in base["positions"].items():
            if not (isinstance(patterns, list) and all(isinstance(p, str) and p for p in patterns)):
                raise ConfigError(file, f"{table}.positions", name, f"expected a list of glob patterns, got {patterns!r}")
            positions[name] = tuple(patterns)

        limits = []
        for index, item in enumerate(base["point_limits"]):
            where = f"{table}.point_limits[{index}]"
            checked = validate_table(item, _POINT_LIMIT, file, where)
            if checked["high"] is None and checked["low"] is None:
                raise ConfigError(file, where, "high", "give high, low or both")
            if checked["high"] is not None and checked["low"] is not None and checked["low"] >= checked["high"]:
                raise ConfigError(file, where, "low", f"low ({checked['low']:g}) must be below high ({checked['high']:g})")
            deadband = checked["deadband"]
            if deadband is None:
                deadband = classes.get(checked["category"], classes.get("default", AlarmClass())).deadband
            positive(deadband, where, "deadband")
            limits.append(PointLimit(checked["point"], checked["high"], checked["low"], deadband, parse_priority(checked["priority"]), checked["category"]))

        rules = []
        for index, item in enumerate(base["suppress"]):
            where = f"{table}.suppress[{index}]"
            checked = validate_table(item, _SUPPRESS, file, where)
            if checked["source"] is None and checked["category"] is None and checked["point"] is None:
                raise ConfigError(file, where, None, "a rule needs source, category or point (it would suppress every alarm)")
            rules.append(SuppressRule(checked["source"], checked["category"], checked["point"], checked["reason"]))

        flood_raw = validate_table(base["flood"], _FLOOD, file, f"{table}.flood")
        positive(flood_raw["window_s"], f"{table}.flood", "window_s", allow_zero=False)
        if flood_raw["start"] < 1:
            raise ConfigError(file, f"{table}.flood", "start", f"must be ≥ 1, got {flood_raw['start']}")
        if not 0 <= flood_raw["end"] <= flood_raw["start"]:
            raise ConfigError(file, f"{table}.flood", "end", f"must be between 0 and start ({flood_raw['start']}), got {flood_raw['end']}")
        suppressed = []
        for name in flood_raw["suppress_priorities"]:
            if name not in PRIORITIES:
                raise ConfigError(file, f"{table}.flood", "suppress_priorities", f"unknown priority {name!r} (choices: {', '.join(PRIORITIES)})")
            suppressed.append(parse_priority(name))
        flood = FloodSettings(flood_raw["window_s"], flood_raw["start"], flood_raw["end"], frozenset(suppressed))

        protection_raw = validate_table(base["protection"], _PROTECTION, file, f"{table}.protection")
        positive(protection_raw["command_window_s"], f"{table}.protection", "command_window_s")
        positive(protection_raw["grace_s"], f"{table}.protection", "grace_s")
        protection = ProtectionSettings(
            protection_raw["enabled"], protection_raw["command_window_s"], protection_raw["grace_s"], parse_priority(protection_raw["priority"])
        )

        notifiers: dict[str, NotifierConfig] = {}
        for name, item in base["notifiers"].items():
            where = f"{table}.notifiers.{name}"
            checked = validate_table(item, _NOTIFIER, file, where)
            if checked["retries"] < 0:
                raise ConfigError(file, where, "retries", f"must be ≥ 0, got {checked['retries']}")
            positive(checked["backoff_s"], where, "backoff_s")
            positive(checked["backoff_max_s"], where, "backoff_max_s")
            notifiers[name] = NotifierConfig(
                name, checked["type"], checked["settings"], checked["retries"], checked["backoff_s"], checked["backoff_max_s"], where
            )

        steps = []
        for index, item in enumerate(base["escalation"]):
            where = f"{table}.escalation[{index}]"
            checked = validate_table(item, _STEP, file, where)
            positive(checked["unacknowledged_for_s"], where, "unacknowledged_for_s")
            names = checked["notify"]
            if not names or not all(isinstance(n, str) for n in names):
                raise ConfigError(file, where, "notify", f"expected a non-empty list of notifier names, got {names!r}")
            for name in names:
                if name not in notifiers:
                    known = ", ".join(sorted(notifiers)) or "none"
                    raise ConfigError(file, where, "notify", f"no notifier named {name!r} (declared in [settings.alarms.notifiers]: {known})")
            priority = None if checked["priority"] == "any" else parse_priority(checked["priority"])
            steps.append(EscalationStep(index, priority, checked["unacknowledged_for_s"], tuple(names), checked["category"]))

        return cls(
            tick_s=base["tick_s"],
            classes=classes,
            positions=positions,
            default_position=base["default_position"],
            point_limits=tuple(limits),
            suppress=tuple(rules),
            quality_alarms=base["quality_alarms"],
            state_suppression=base["state_suppression"],
            max_shelve_s=base["max_shelve_s"],
            flood=flood,
            protection=protection,
            notifiers=notifiers,
            escalation=tuple(steps),
        )

