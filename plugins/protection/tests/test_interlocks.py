"""Switching interlocks: each rule vetoes with a message naming rule and elements; the allowed cases pass.
Then the plugin in a kernel: vetoes through the command path, coordination rerun after a topology
change, intertripping."""

from __future__ import annotations

import asyncio
import time

import pytest

import dms_pandapower.plugin as pandapower_plugin
from dms_hookspecs import Command, CommandResult, CommandStatus, MeasurementBatch, PointKind, PointSpec, Setting, SettingsSchema, Source, StudyResult, hookimpl
from dms_kernel.model import Analog, Discrete, Disconnector, GroundDisconnector
from dms_kernel.model.scada import add_scada_measurements
from dms_pandapower.examples import load_example
from dms_protection import plugin as protection_plugin
from dms_protection.interlocks import CLOSE, OPEN, CrewWork, InterlockRules, Interlocks

from .chains import insert_switch


@pytest.fixture
def grid():
    model = load_example("cigre_mv")
    insert_switch(model, "Line 1-2", Disconnector, "DS1", "DS1", at_node="bus_1")
    model.add(GroundDisconnector("ES1", name="ES1", terminals=[]))
    model.connect(model.get("ES1"), "switch_1_node")
    model.add(Discrete("ES1_M_Pos", power_system_resource="ES1", measurement_type="SwitchPosition", point="ES1/Pos"))
    model.invalidate()
    add_scada_measurements(model)
    return model


class Snapshot:
    """A stand-in snapshot: ``values`` by point name."""

    def __init__(self, values):
        self.values = values

    def get(self, point):
        from dms_hookspecs import Measurement

        if point not in self.values:
            raise KeyError(point)
        return Measurement(point, self.values[point])


def test_earthed_section(grid):
    interlocks = Interlocks(grid)
    # earthing the live line 6-7 is refused
    assert interlocks.check("ES1/Pos", CLOSE).startswith("rule earthed-section: closing earthing switch ES1")
    # isolate line 6-7 (switch 0 open; S2 is normally open), then earth it: allowed
    grid.get("switch_0").open = True
    assert interlocks.check("ES1/Pos", CLOSE) is None
    grid.get("ES1").open = False
    reason = interlocks.check("switch_0/Pos", CLOSE)
    assert reason.startswith("rule earthed-section: closing switch 0 (switch_0)") and "earthed by ES1" in reason
    assert "S2 (switch_1)" in interlocks.check("S2/Pos", CLOSE)
    # earthing switch open again: closing is allowed
    grid.get("ES1").open = True
    assert interlocks.check("switch_0/Pos", CLOSE) is None
    # the position in the snapshot wins over the model
    assert "earthed" in interlocks.check("switch_0/Pos", CLOSE, Snapshot({"ES1/Pos": 2.0}))


def test_disconnector_under_load(grid):
    flows: dict[str, float] = {}
    interlocks = Interlocks(grid, InterlockRules(disconnector_max_current_a=5.0), branch_currents=lambda: flows)
    reason = interlocks.check("DS1/Pos", OPEN)
    assert reason.startswith("rule disconnector-under-load: disconnector DS1 carries") and "estimated from the load" in reason
    flows["line_0"] = 312.0  # the latest power flow: Line 1-2 next to DS1
    assert "312.0 A (power flow)" in interlocks.check("DS1/Pos", OPEN)
    grid.add(Analog("DS1_I", terminal=grid.get("DS1").terminals[0], measurement_type="LineCurrent", unit="A", point="DS1/I"))
    grid.invalidate()
    interlocks = Interlocks(grid, InterlockRules(disconnector_max_current_a=5.0), branch_currents=lambda: flows)
    assert "240.0 A (measured)" in interlocks.check("DS1/Pos", OPEN, Snapshot({"DS1/I": 240.0}))
    assert interlocks.check("DS1/Pos", OPEN, Snapshot({"DS1/I": 3.0})) is None  # below the limit
    # a load-break switch may be opened under load; a de-energised disconnector too
    assert interlocks.check("switch_0/Pos", OPEN) is None
    grid.get("switch_6").open = True
    flows.clear()
    assert Interlocks(grid, InterlockRules(disconnector_max_current_a=5.0)).check("DS1/Pos", OPEN) is None


def test_parallel_feeders(grid):
    reason = Interlocks(grid).check("S1/Pos", CLOSE)
    assert reason == ("rule parallel-feeders: closing S1 (switch_4) would parallel feeders from different substations "
                      "'Trafo 0-1' and 'Trafo 0-12' (not in allow_parallel)")
    allowed = InterlockRules.from_settings({"allow_parallel": [["Trafo 0-12", "Trafo 0-1"]]})
    assert Interlocks(grid, allowed).check("S1/Pos", CLOSE) is None
    # a loop inside one feeder is not paralleling substations
    assert Interlocks(grid).check("S3/Pos", CLOSE) is None
    # restoration: feeder 2 picks up a dead part of feeder 1 through the tie
    grid.get("switch_6").open = True
    assert Interlocks(grid).check("S1/Pos", CLOSE) is None


def test_crew_on_site(grid):
    work = [CrewWork(7, "north", "Line 9-10")]
    interlocks = Interlocks(grid, crew_work=lambda: work)
    reason = interlocks.check("switch_6/Pos", OPEN)
    assert reason == ("rule crew-on-site: opening switch 6 (switch_6) would de-energise Line 9-10 where crew north is "
                      "on site (work order 7); the crew has not released the section")
    assert interlocks.check("switch_7/Pos", OPEN) is None  # the other feeder
    work[0] = CrewWork(7, "north", "Line 9-10", released=True)
    assert interlocks.check("switch_6/Pos", OPEN) is None


def test_unknown_or_unchanged_commands_pass(grid):
    interlocks = Interlocks(grid)
    assert interlocks.check("no such point", CLOSE) is None
    assert interlocks.check("S1/Pos", OPEN) is None  # already open


# -- the plugin in a kernel ----------------------------------------------------------------------


class SwitchRtu(Source):
    """Switch positions (2 = closed, 1 = open) that follow the commands."""

    settings_schema = SettingsSchema((Setting("positions", dict, {}),))
    operated: list = []

    def points(self):
        return [PointSpec(name, PointKind.DOUBLE, controllable=True) for name in self.settings["positions"]]

    async def run(self, context):
        self.context = context
        names = list(self.settings["positions"])
        self.numbers = dict(zip(names, context.point_numbers(names), strict=True))
        now = time.time()
        context.publish(MeasurementBatch(self.name, list(self.numbers.values()), [float(v) for v in self.settings["positions"].values()],
                                         [0] * len(names), [now] * len(names), receive_time=now))
        await asyncio.Event().wait()

    async def operate(self, command):
        SwitchRtu.operated.append((command.target.name, command.value, command.originator))
        self.context.publish_one(int(self.numbers[command.target.name]), float(command.value))
        return CommandResult(command.id, CommandStatus.SUCCEEDED, "done")


class rtu_types:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_add_source_types(registry):
        registry.add("switch_rtu", SwitchRtu)


async def test_plugin_in_kernel(make_kernel, tmp_path, radial_good):
    positions = {"switch_0/Pos": 2, "S1/Pos": 1, "S2/Pos": 1, "S3/Pos": 1, "switch_3/Pos": 2, "switch_5/Pos": 2, "switch_6/Pos": 2, "switch_7/Pos": 2}
    deployment = f"""
        [deployment]
        name = "protection"
        model = "cigre_mv"
        standard_measurements = true
        [settings.protection]
        url = "sqlite:///{tmp_path / 'protection.db'}"
        intertrips = [{{ trigger = "switch_6/Pos", partner = "switch_7/Pos" }}]
        devices = [
            {{ device = "switch_6", kind = "relay", overcurrent = [{{ pickup_a = 80.0, curve = "iec_standard_inverse", multiplier = 0.3 }}] }},
            {{ device = "switch_7", kind = "relay", overcurrent = [{{ pickup_a = 80.0, curve = "iec_standard_inverse", multiplier = 0.3 }}] }},
        ]
        [[sources]]
        name = "rtu"
        type = "switch_rtu"
        settings = {{ positions = {{ {", ".join(f'"{k}" = {v}' for k, v in positions.items())} }} }}
    """
    kernel = make_kernel(("pandapower", pandapower_plugin), ("protection", protection_plugin), ("rtus", rtu_types), deployment=deployment)
    SwitchRtu.operated = []
    results: list = []

    async def collect(events):
        results.extend(events)

    async with kernel:
        kernel.bus.subscribe("test", collect, (StudyResult,), 1000)
        service = protection_plugin.service_for(kernel)
        assert service.store.active_group("switch_6") == 1 and set(service.store.devices()) == {"switch_6", "switch_7"}
        for _ in range(50):
            if kernel.points.read("S1/Pos").value == 1.0:
                break
            await asyncio.sleep(0.02)
        vetoed = await kernel.execute(Command("S1/Pos", CLOSE, originator="operator:alice"))
        assert vetoed.status is CommandStatus.VETOED
        assert vetoed.reason.startswith("protection: rule parallel-feeders: closing S1")
        closed = await kernel.execute(Command("S3/Pos", CLOSE, originator="operator:alice"))
        assert closed.ok, closed.reason
        for _ in range(200):  # the topology change reruns the coordination check
            if any(r.study == "protection_check" for r in results):
                break
            await asyncio.sleep(0.05)
        (check,) = [r for r in results if r.study == "protection_check"]
        assert check.data["ok"], check.data["violations"]
        assert check.data["devices"] == ["switch_6", "switch_7"]
        # intertrip: switch 6 opens -> the partner gets a trip command through the command path
        assert (await kernel.execute(Command("switch_6/Pos", OPEN, originator="operator:alice"))).ok
        for _ in range(100):
            if ("switch_7/Pos", OPEN, "controller:protection") in SwitchRtu.operated:
                break
            await asyncio.sleep(0.02)
        assert ("switch_7/Pos", OPEN, "controller:protection") in SwitchRtu.operated
        # on demand through the study hook
        result = await kernel.run_study("protection_check")
        assert result.solver == "protection" and result.converged
