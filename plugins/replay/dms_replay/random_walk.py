"""Random-walk source: N analogue points drifting around a nominal value, plus controllable set-points."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np

from dms_hookspecs import (
    REQUIRED,
    Command,
    CommandResult,
    CommandStatus,
    MeasurementBatch,
    PointKind,
    PointSpec,
    Setting,
    SettingsSchema,
    Source,
    SourceContext,
)


class RandomWalkSource(Source):
    """Publishes ``points`` random-walk values every ``period_s`` seconds.

    Point names are ``<prefix><n>`` (n from 0). Each value takes a step with standard
    deviation ``step`` around ``nominal``; ``controls`` extra set-point points
    (``<prefix>SP<n>``) accept commands and publish the commanded value.
    """

    settings_schema = SettingsSchema(
        (
            Setting("points", int, REQUIRED, "number of analogue points"),
            Setting("period_s", float, 1.0, "publishing period"),
            Setting("prefix", str, "", "point name prefix (default: '<source name>/P')"),
            Setting("nominal", float, 10.0, "value the walk starts from and is pulled back to"),
            Setting("step", float, 0.1, "standard deviation of one step"),
            Setting("unit", str, "kV", "engineering unit"),
            Setting("deadband", float, 0.0, "reporting deadband"),
            Setting("controls", int, 0, "number of controllable set-point points"),
            Setting("seed", int, None, "random seed for reproducible runs"),
        )
    )

    def __init__(self, name: str, settings) -> None:
        super().__init__(name, settings)
        if settings["points"] < 0 or settings["controls"] < 0:
            raise ValueError("points and controls must not be negative")
        if settings["period_s"] <= 0:
            raise ValueError("period_s must be positive")
        self.prefix = settings["prefix"] or f"{name}/P"
        self._rng = np.random.default_rng(settings["seed"])
        self._values = np.full(settings["points"], settings["nominal"], dtype=np.float64)
        self._setpoints: dict[str, float] = {}
        self._context: SourceContext | None = None

    def points(self) -> Sequence[PointSpec]:
        analog = [
            PointSpec(f"{self.prefix}{n}", PointKind.ANALOG, unit=self.settings["unit"], deadband=self.settings["deadband"])
            for n in range(self.settings["points"])
        ]
        controls = [
            PointSpec(f"{self.prefix}SP{n}", PointKind.SETPOINT, unit=self.settings["unit"], controllable=True)
            for n in range(self.settings["controls"])
        ]
        return analog + controls

    async def run(self, context: SourceContext) -> None:
        self._context = context
        numbers = np.asarray(context.point_numbers([f"{self.prefix}{n}" for n in range(self.settings["points"])]))
        quality = np.zeros(numbers.size, dtype=np.uint16)
        nominal, step = self.settings["nominal"], self.settings["step"]
        while True:
            # mean-reverting walk: stays near nominal for arbitrarily long runs
            self._values += self._rng.normal(0.0, step, self._values.size) - 0.05 * (self._values - nominal)
            now = time.time()
            context.publish(
                MeasurementBatch(self.name, numbers, self._values.copy(), quality, np.full(numbers.size, now))
            )
            await asyncio.sleep(self.settings["period_s"])

    async def operate(self, command: Command) -> CommandResult:
        name = command.target.name
        if not name.startswith(f"{self.prefix}SP"):
            return CommandResult(command.id, CommandStatus.REJECTED, f"{name!r} is not a set-point of {self.name!r}")
        self._setpoints[name] = float(command.value)
        if self._context is not None:
            (number,) = self._context.point_numbers([name])
            self._context.publish_one(int(number), float(command.value))
        return CommandResult(command.id, CommandStatus.SUCCEEDED, f"set-point {name} = {command.value:g}")
