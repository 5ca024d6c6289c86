"""Hook implementations of the ``example_interlock`` plugin (the module the entry point names).

Hooks implemented:

``dms_settings_schema``
    declares ``[settings.example_interlock]``: ``max_setpoint``, ``min_setpoint``,
    ``blocked_points``; the kernel validates the deployment file against it.
``dms_startup``
    reads the validated settings, checks them, arms the interlock and logs what it enforces.
``dms_veto_command``
    vetoes commands on blocked points and set-points outside the limits, with a reason the
    operator can act on (the kernel prefixes it with the plugin's name).
``dms_shutdown``
    disarms the interlock.

Fail safe: until the kernel has started this plugin, it vetoes every command.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dms_hookspecs import Command, KernelAPI, PointKind, PointSpec, Setting, SettingsSchema, hookimpl

PLUGIN_NAME = "example_interlock"
"""The entry-point name in pyproject.toml; the deployment file configures ``[settings.example_interlock]``."""

SETTINGS = SettingsSchema(
    (
        Setting("max_setpoint", float, None, "highest value a set-point command may ask for (unset: no upper limit)"),
        Setting("min_setpoint", float, None, "lowest value a set-point command may ask for (unset: no lower limit)"),
        Setting("blocked_points", list, [], "points on which every command is vetoed, e.g. under maintenance"),
    )
)

log = logging.getLogger("leitstand.example_interlock")


@dataclass(frozen=True)
class Rules:
    """What the interlock enforces; built from the validated plugin settings."""

    max_setpoint: float | None = None
    min_setpoint: float | None = None
    blocked_points: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Rules:
        """Check what the schema cannot express (element types, min <= max).

        :raises ValueError: the settings are inconsistent; at ``dms_startup`` this aborts
            the start with a message naming this plugin.
        """
        blocked = settings.get("blocked_points") or []
        bad = [item for item in blocked if not isinstance(item, str) or not item]
        if bad:
            raise ValueError(f"blocked_points must be an array of point names, got {bad!r}")
        high, low = settings.get("max_setpoint"), settings.get("min_setpoint")
        if high is not None and low is not None and low > high:
            raise ValueError(f"min_setpoint ({low:g}) is above max_setpoint ({high:g})")
        return cls(max_setpoint=high, min_setpoint=low, blocked_points=frozenset(blocked))

    def check(self, command: Command, point: PointSpec) -> str | None:
        """The reason to veto ``command`` on ``point``, or ``None`` to let it pass."""
        name = point.id.name
        if name in self.blocked_points:
            return f"point {name!r} is blocked (blocked_points); no command may be executed on it"
        if point.kind is not PointKind.SETPOINT:
            return None
        value = float(command.value)
        unit = f" {point.unit}" if point.unit else ""
        if not math.isfinite(value):
            return f"set-point {value} on {name!r} is not a finite number"
        if self.max_setpoint is not None and value > self.max_setpoint:
            return f"set-point {value:g}{unit} on {name!r} is above the limit {self.max_setpoint:g}{unit} (max_setpoint)"
        if self.min_setpoint is not None and value < self.min_setpoint:
            return f"set-point {value:g}{unit} on {name!r} is below the limit {self.min_setpoint:g}{unit} (min_setpoint)"
        return None


_rules: Rules | None = None
"""Armed at ``dms_startup``, disarmed at ``dms_shutdown``. A plugin module is loaded once per
process, so this state is per process: fine for one kernel per process, as ``leitstand run`` has."""


@hookimpl
def dms_settings_schema() -> SettingsSchema:
    return SETTINGS


@hookimpl
def dms_startup(kernel: KernelAPI) -> None:
    global _rules
    rules = Rules.from_settings(kernel.settings_for(PLUGIN_NAME))
    known = set(kernel.snapshot().names)
    for name in sorted(rules.blocked_points - known):
        log.warning("blocked point %r is not declared by any source of deployment %r (misspelled?)", name, kernel.name)
    _rules = rules
    log.info(
        "interlock armed for %r: set-points in [%s, %s], %d blocked point(s)%s",
        kernel.name,
        "-inf" if rules.min_setpoint is None else f"{rules.min_setpoint:g}",
        "inf" if rules.max_setpoint is None else f"{rules.max_setpoint:g}",
        len(rules.blocked_points),
        f": {', '.join(sorted(rules.blocked_points))}" if rules.blocked_points else "",
    )


# The hook specification is dms_veto_command(command, point, snapshot); an implementation may
# take any subset of those arguments. This interlock does not need the snapshot.
@hookimpl
def dms_veto_command(command: Command, point: PointSpec) -> str | None:
    if _rules is None:
        return "interlock is not armed (kernel not started); refusing all commands"
    return _rules.check(command, point)


@hookimpl
def dms_shutdown(kernel: KernelAPI) -> None:
    global _rules
    _rules = None
    log.info("interlock disarmed for %r", kernel.name)
