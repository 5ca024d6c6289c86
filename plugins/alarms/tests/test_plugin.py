"""The alarms plugin in a running kernel: events in, managed list and audited actions out."""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import entry_points

import numpy as np
import pytest
from plugins_for_tests import ListSink

import dms_alarms.plugin
from dms_alarms import IsaState, manager_for
from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    AlarmState,
    AuditEntry,
    Command,
    CommandResult,
    CommandStatus,
    Detail,
    MeasurementBatch,
    PointKind,
    PointSpec,
    Quality,
    Source,
    Validity,
    hookimpl,
)
from dms_kernel.errors import ConfigError, PluginError

INVALID = Quality(Validity.INVALID, Detail.OLD_DATA).to_bits()


class FieldSource(Source):
    """Analog points P0..P3 and breakers CB0, CB1; commands on CB1 fail; the test publishes and trips."""

    instances: dict[str, FieldSource] = {}

    def __init__(self, name, settings):
        super().__init__(name, settings)
        self.ready = asyncio.Event()
        FieldSource.instances[name] = self

    def points(self):
        return [PointSpec(f"{self.name}/P{n}", unit="kV") for n in range(4)] + [
            PointSpec(f"{self.name}/CB{n}", PointKind.DOUBLE, controllable=True) for n in range(2)
        ]

    async def run(self, context):
        self.context = context
        self.ready.set()
        await asyncio.Event().wait()

    def publish(self, values: dict[str, float], quality: int = 0):
        names = [f"{self.name}/{n}" for n in values]
        numbers = np.asarray(self.context.point_numbers(names))
        self.context.publish(
            MeasurementBatch(self.name, numbers, np.array(list(values.values()), float), np.full(len(names), quality, np.uint16), np.full(len(names), time.time()))
        )

    async def operate(self, command):
        if command.target.name.endswith("CB1"):
            return CommandResult(command.id, CommandStatus.FAILED, "breaker mechanism did not move")
        self.publish({command.target.name.rsplit("/", 1)[1]: command.value})
        return CommandResult(command.id, CommandStatus.SUCCEEDED, "done")


class field_plugin:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_add_source_types(registry):
        registry.add("field", FieldSource)

    @staticmethod
    @hookimpl
    def dms_add_sink_types(registry):
        registry.add("list", ListSink)


def deployment(alarms: str = "") -> str:
    return f"""
[deployment]
name = "alarm test"

[settings.alarms]
tick_s = 0.02
protection = {{ grace_s = 0.1 }}
{alarms}

[[sources]]
name = "rtu"
type = "field"

[[sinks]]
name = "log"
type = "list"
"""


async def until(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def running(make_kernel):
    kernel = make_kernel(("alarms", dms_alarms.plugin), field_plugin, deployment=deployment())
    async with kernel:
        source = FieldSource.instances["rtu"]
        await source.ready.wait()
        yield kernel, source, manager_for(kernel), ListSink.instances["log"]


async def test_plugin_alarm_events_are_managed_and_operator_actions_are_emitted_and_audited(running):
    kernel, _, alarms, sink = running
    raw = Alarm("voltage 1.120 pu at node 'n2' all phases above 1.100 pu", AlarmPriority.HIGH, source="limits", category="limit")
    kernel.emit(raw)
    await until(lambda: len(alarms.active()) == 1)
    alarm = alarms.active()[0]
    assert alarm.message == raw.message and alarm.state is IsaState.UNACK_ACTIVE
    alarms.acknowledge(alarm.id, "alice", "crew informed")
    kernel.emit(Alarm(f"cleared: {raw.message}", AlarmPriority.HIGH, source="limits", category="limit", state=AlarmState.CLEARED, id=raw.id))
    await until(lambda: len(alarms) == 0)
    await asyncio.sleep(0.1)
    managed = [e for e in sink.of_type(Alarm) if e.id == alarm.id]
    assert [e.state for e in managed] == [AlarmState.RAISED, AlarmState.ACKNOWLEDGED, AlarmState.CLEARED]
    audit = [e for e in sink.of_type(AuditEntry) if e.action.startswith("alarm.")]
    assert [(e.actor, e.action, e.subject) for e in audit] == [("alice", "alarm.acknowledge", alarm.id)]
    assert "crew informed" in audit[0].detail
    assert len(alarms) == 0  # the manager's own events did not come back as new alarms


async def test_failed_command_raises_a_command_alarm_and_refusals_do_not(running):
    kernel, _, alarms, _ = running
    result = await kernel.execute(Command("rtu/CB1", 1, originator="operator:bob"))
    assert result.status is CommandStatus.FAILED
    vetoed = await kernel.execute(Command("rtu/P0", 1, originator="operator:bob"))  # not controllable: rejected at route
    assert vetoed.status is CommandStatus.REJECTED
    await until(lambda: len(alarms) == 1)
    await asyncio.sleep(0.1)
    [alarm] = list(alarms)
    assert alarm.category == "command" and alarm.point == "rtu/CB1" and alarm.source == "rtu"
    assert "by operator:bob failed at operate: breaker mechanism did not move" in alarm.message
    assert alarm.state is IsaState.UNACK_RTN  # an event: waits for acknowledgement only


async def test_switch_opening_without_command_is_a_protection_trip(running):
    kernel, source, alarms, _ = running
    source.publish({"CB0": 2})
    await asyncio.sleep(0.05)
    assert (await kernel.execute(Command("rtu/CB0", 1, originator="operator:alice"))).ok  # commanded opening
    await asyncio.sleep(0.3)
    assert alarms.active(category="protection") == []
    assert (await kernel.execute(Command("rtu/CB0", 2, originator="operator:alice"))).ok
    await asyncio.sleep(0.05)
    source.publish({"CB0": 1})  # opens on its own
    await until(lambda: len(alarms.active(category="protection")) == 1)
    [trip] = alarms.active(category="protection")
    assert trip.point == "rtu/CB0" and trip.priority is AlarmPriority.HIGH and trip.state is IsaState.UNACK_ACTIVE
    assert trip.message == "switch 'rtu/CB0' opened without a command (protection trip)"
    source.publish({"CB0": 2})  # reclosed
    await until(lambda: trip.state is IsaState.UNACK_RTN)


async def test_invalid_points_raise_one_quality_alarm_per_source(running):
    _, source, alarms, _ = running
    source.publish({"P0": 20.0, "P1": 20.1, "P2": 19.9})
    await asyncio.sleep(0.05)
    assert len(alarms) == 0
    source.publish({"P0": 20.0, "P1": 20.1}, quality=INVALID)
    await until(lambda: len(alarms.active(category="quality")) == 1)
    [alarm] = alarms.active(category="quality")
    assert alarm.source == "rtu" and alarm.message == "2 of 6 points of 'rtu' invalid (rtu/P0, rtu/P1)"
    source.publish({"P0": 20.0})
    await asyncio.sleep(0.05)
    assert alarm.message == "1 of 6 points of 'rtu' invalid (rtu/P1)" and alarm.active
    source.publish({"P1": 20.0})
    await until(lambda: not alarm.active)


async def test_point_limits_use_the_deadband(make_kernel):
    kernel = make_kernel(
        ("alarms", dms_alarms.plugin), field_plugin,
        deployment=deployment('point_limits = [{ point = "rtu/P0", high = 21.0, low = 19.0, deadband = 0.2, priority = "high" }]'),
    )
    async with kernel:
        source = FieldSource.instances["rtu"]
        await source.ready.wait()
        alarms = manager_for(kernel)
        source.publish({"P0": 20.5})
        await asyncio.sleep(0.05)
        assert len(alarms) == 0
        source.publish({"P0": 21.3})
        await until(lambda: len(alarms) == 1)
        [alarm] = list(alarms)
        assert alarm.message == "rtu/P0 = 21.3 kV above high limit 21 kV" and alarm.priority is AlarmPriority.HIGH
        source.publish({"P0": 20.9})  # inside the limit, not beyond the deadband
        await asyncio.sleep(0.05)
        assert alarm.active
        source.publish({"P0": 20.7})
        await until(lambda: not alarm.active)
        source.publish({"P0": 18.5})
        await until(lambda: len(alarms.active(unacknowledged=True)) == 2)
        assert "below low limit 19 kV" in alarms.active()[0].message


@pytest.mark.parametrize(
    ("settings", "table", "key", "problem"),
    [
        ('escalation = [{ priority = "urgent", unacknowledged_for_s = 5, notify = ["x"] }]', "settings.alarms.escalation[0]", "priority", "must be one of"),
        ('notifiers = { oncall = { type = "email" } }\nescalation = [{ priority = "critical", unacknowledged_for_s = 5, notify = ["lead"] }]',
         "settings.alarms.escalation[0]", "notify", "no notifier named 'lead' (declared in [settings.alarms.notifiers]: oncall)"),
        ("classes = { comms = { on_delay_s = -1.0 } }", "settings.alarms.classes.comms", "on_delay_s", "must be ≥ 0"),
        ('point_limits = [{ point = "rtu/P0", high = 1.0, low = 2.0 }]', "settings.alarms.point_limits[0]", "low", "must be below high"),
        ('flood = { start = 5, end = 8 }', "settings.alarms.flood", "end", "between 0 and start"),
        ('notifiers = { oncall = { type = "pager" } }', "settings.alarms.notifiers.oncall", "type", "unknown notifier type 'pager'"),
        ('notifiers = { oncall = { type = "email", retries = -2 } }', "settings.alarms.notifiers.oncall", "retries", "must be ≥ 0"),
    ],
)
async def test_bad_settings_are_config_errors_naming_table_and_key(make_kernel, settings, table, key, problem):
    kernel = make_kernel(("alarms", dms_alarms.plugin), field_plugin, deployment=deployment(settings))
    with pytest.raises(ConfigError) as caught:
        await kernel.start()
    assert caught.value.table == table and caught.value.key == key
    assert problem in caught.value.problem


async def test_unknown_point_in_limits_names_the_plugin(make_kernel):
    kernel = make_kernel(("alarms", dms_alarms.plugin), field_plugin, deployment=deployment('point_limits = [{ point = "nope", high = 1.0 }]'))
    with pytest.raises(PluginError, match="plugin 'alarms' failed in dms_startup: ValueError: .*point 'nope' is not declared"):
        await kernel.start()


async def test_manager_for_a_kernel_without_the_plugin(make_kernel):
    kernel = make_kernel(field_plugin, deployment=deployment().replace("[settings.alarms]", "[settings.unused]").split("[settings.unused]")[0] + '\n[[sources]]\nname = "rtu"\ntype = "field"\n')
    async with kernel:
        with pytest.raises(LookupError, match="alarms plugin is not running"):
            manager_for(kernel)


def test_the_distribution_registers_the_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="dms.plugins")}
    assert plugins["alarms"] == "dms_alarms.plugin"
