"""Small plugins used by the kernel's tests (registered explicitly through make_kernel)."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from dms_hookspecs import (
    CommandResult,
    CommandStatus,
    MeasurementBatch,
    PointKind,
    PointSpec,
    Setting,
    SettingsSchema,
    Sink,
    Source,
    StudyResult,
    hookimpl,
)


class ManualSource(Source):
    """A source the test drives: ``publish(values)``; breakers ``<name>/CB<n>`` accept commands."""

    settings_schema = SettingsSchema(
        (
            Setting("points", int, 3),
            Setting("breakers", int, 1),
            Setting("operate_delay_s", float, 0.0),
            Setting("deadband", float, 0.0),
        )
    )
    instances: dict[str, ManualSource] = {}

    def __init__(self, name, settings):
        super().__init__(name, settings)
        self.context = None
        self.selected: list[str] = []
        self.operated: list[tuple[str, float]] = []
        self.ready = asyncio.Event()
        ManualSource.instances[name] = self

    def points(self):
        analog = [PointSpec(f"{self.name}/P{n}", deadband=self.settings["deadband"]) for n in range(self.settings["points"])]
        breakers = [
            PointSpec(f"{self.name}/CB{n}", PointKind.DOUBLE, controllable=True, select_before_operate=(n == 1))
            for n in range(self.settings["breakers"])
        ]
        return analog + breakers

    async def run(self, context):
        self.context = context
        self.numbers = np.asarray(context.point_numbers([f"{self.name}/P{n}" for n in range(self.settings["points"])]))
        self.ready.set()
        await asyncio.Event().wait()

    def publish(self, values, quality=0):
        values = np.asarray(values, dtype=float)
        self.context.publish(
            MeasurementBatch(self.name, self.numbers[: values.size], values, np.full(values.size, quality, np.uint16), np.full(values.size, time.time()))
        )

    async def select(self, command):
        self.selected.append(command.target.name)
        return CommandResult(command.id, CommandStatus.SUCCEEDED, "selected", step="select")

    async def operate(self, command):
        await asyncio.sleep(self.settings["operate_delay_s"])
        self.operated.append((command.target.name, command.value))
        return CommandResult(command.id, CommandStatus.SUCCEEDED, "done")


class ListSink(Sink):
    """Keeps every event in memory; ``delay_s`` makes it slow."""

    settings_schema = SettingsSchema((Setting("delay_s", float, 0.0),))
    instances: dict[str, ListSink] = {}

    def __init__(self, name, settings):
        super().__init__(name, settings)
        self.events = []
        ListSink.instances[name] = self

    async def write(self, events):
        if self.settings["delay_s"]:
            await asyncio.sleep(self.settings["delay_s"])
        self.events.extend(events)

    def of_type(self, cls):
        return [event for event in self.events if isinstance(event, cls)]


class test_types:  # noqa: N801 - a plugin object named like a module
    """Registers ManualSource as ``manual`` and ListSink as ``list``."""

    @staticmethod
    @hookimpl
    def dms_add_source_types(registry):
        registry.add("manual", ManualSource)

    @staticmethod
    @hookimpl
    def dms_add_sink_types(registry):
        registry.add("list", ListSink)


class default_solver:  # noqa: N801
    """A built-in-style solver: registered trylast, so any other plugin can replace it."""

    @staticmethod
    @hookimpl
    def dms_studies():
        return ["mean_value"]

    @staticmethod
    @hookimpl(trylast=True)
    def dms_run_study(study, model, snapshot, options):
        if study != "mean_value":
            return None
        values = np.asarray(snapshot.values)
        return StudyResult(study, "default_solver", True, {"mean": float(np.nanmean(values)) if np.isfinite(values).any() else 0.0})


def deployment(sources: str = "", sinks: str = "", extra: str = "") -> str:
    return f'''
[deployment]
name = "test"
{extra}
[[sources]]
name = "rtu"
type = "manual"
{sources}
[[sinks]]
name = "log"
type = "list"
{sinks}
'''
