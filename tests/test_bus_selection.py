"""Bus selection (``[kernel] bus``, ``dms_add_bus_types``) and front-end groups of sources."""

from __future__ import annotations

import asyncio

import pytest

import plugins_for_tests as p
from dms_hookspecs import Command, CommandResult, CommandStatus, Source, hookimpl
from dms_kernel import ConfigError, PluginError
from dms_kernel.bus import InProcessBus
from dms_kernel.config import parse_deployment


class RemoteStandIn(Source):
    """What a networked bus puts in place of a source that runs elsewhere."""

    def __init__(self, wrapped: Source, group: str) -> None:
        super().__init__(wrapped.name, wrapped.settings)
        self.wrapped = wrapped
        self.group = group

    def points(self):
        return self.wrapped.points()

    async def run(self, context):
        await asyncio.Event().wait()

    async def operate(self, command: Command) -> CommandResult:
        return CommandResult(command.id, CommandStatus.SUCCEEDED, f"forwarded to group {self.group}")


class RecordingBus(InProcessBus):
    created: list[RecordingBus] = []

    def __init__(self, kernel) -> None:
        super().__init__()
        self.kernel_name = kernel.name
        self.settings = dict(kernel.settings_for("fakebus"))
        RecordingBus.created.append(self)

    def remote_source(self, name, source, group):
        return RemoteStandIn(source, group)


class fakebus:  # noqa: N801 - a plugin object named like a module
    @staticmethod
    @hookimpl
    def dms_add_bus_types(registry):
        registry.add("fake", RecordingBus)


def _deployment(bus: str, group: str = 'group = "north"') -> str:
    return p.deployment(sources=group, extra=f'[kernel]\nbus = "{bus}"')


def test_group_key_is_parsed_for_sources_only():
    deployment = parse_deployment({"deployment": {"name": "t"}, "sources": [{"name": "a", "type": "x", "group": "north"}, {"name": "b", "type": "x"}]})
    assert [s.group for s in deployment.sources] == ["north", None]
    assert deployment.kernel["bus"] == "inprocess"
    with pytest.raises(ConfigError, match="sinks\\[0\\].*group.*only sources"):
        parse_deployment({"deployment": {"name": "t"}, "sinks": [{"name": "a", "type": "x", "group": "north"}]})
    with pytest.raises(ConfigError, match="group.*must not be empty"):
        parse_deployment({"deployment": {"name": "t"}, "sources": [{"name": "a", "type": "x", "group": ""}]})


async def test_inprocess_bus_runs_grouped_sources_here(make_kernel):
    kernel = make_kernel(p.test_types, deployment=_deployment("inprocess"))
    async with kernel:
        source = p.ManualSource.instances["rtu"]
        await source.ready.wait()
        assert kernel.sources["rtu"] is source
        assert type(kernel.bus) is InProcessBus


async def test_plugin_bus_is_selected_and_stands_in_for_grouped_sources(make_kernel):
    kernel = make_kernel(p.test_types, fakebus, deployment=_deployment("fake"))
    async with kernel:
        assert isinstance(kernel.bus, RecordingBus) and kernel.bus.kernel_name == "test"
        stand_in = kernel.sources["rtu"]
        assert isinstance(stand_in, RemoteStandIn) and stand_in.group == "north"
        assert kernel.points.owner("rtu/CB0") == "rtu"  # points declared from the real source
        result = await kernel.execute(Command("rtu/CB0", 1))
        assert result.ok and "group north" in result.reason


async def test_ungrouped_sources_run_here_with_a_plugin_bus(make_kernel):
    kernel = make_kernel(p.test_types, fakebus, deployment=_deployment("fake", group=""))
    await kernel.prepare()
    assert isinstance(kernel.sources["rtu"], p.ManualSource)


async def test_unknown_bus_type_names_the_key(make_kernel):
    kernel = make_kernel(p.test_types, deployment=_deployment("carrier-pigeon"))
    with pytest.raises(ConfigError, match="kernel.*bus.*unknown bus type 'carrier-pigeon' \\(registered: inprocess\\)"):
        await kernel.prepare()


async def test_bus_factory_failure_names_the_plugin(make_kernel):
    class brokenbus:  # noqa: N801
        @staticmethod
        @hookimpl
        def dms_add_bus_types(registry):
            registry.add("broken", lambda kernel: 42)

    kernel = make_kernel(p.test_types, ("brokenbus", brokenbus), deployment=_deployment("broken"))
    with pytest.raises(PluginError, match="brokenbus.*returned int, not a dms_kernel.bus.Bus"):
        await kernel.prepare()
