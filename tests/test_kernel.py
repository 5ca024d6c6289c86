"""The kernel end to end: sources → point database → sinks, studies, controllers, supervision."""

from __future__ import annotations

import asyncio
import json
import time
from typing import ClassVar

import numpy as np
import pytest

import dms_replay.plugin
import plugins_for_tests as p
from dms_hookspecs import (
    Alarm,
    Command,
    CommandResult,
    ControlAction,
    MeasurementBatch,
    PointSpec,
    Source,
    StudyResult,
    hookimpl,
)
import dms_kernel.kernel as kernel_module
from dms_kernel import StudyError
from dms_kernel.testing import PublishingSource, source_plugin
from subprocess_helpers import run_leitstand


async def test_replay_source_values_reach_database_and_sink(make_kernel, tmp_path):
    recording = tmp_path / "feeder.csv"
    recording.write_text("time,point,value,quality\n0,F1/U,10.1,0\n0,F1/I,120,0\n0.05,F1/U,10.4,0\n0.1,F1/I,0,65\n")
    text = f'''
[deployment]
name = "replay"
[[sources]]
name = "recorder"
type = "replay"
settings = {{ file = "{recording}", speed = 1.0 }}
[[sinks]]
name = "log"
type = "list"
'''
    kernel = make_kernel(dms_replay.plugin, p.test_types, deployment=text)
    async with kernel:
        await asyncio.sleep(0.3)
        assert kernel.points.read("F1/U").value == 10.4
        current = kernel.points.read("F1/I")
        assert current.value == 0.0
        assert current.quality.validity.name == "INVALID" and "failure" in str(current.quality)
    batches = p.ListSink.instances["log"].of_type(MeasurementBatch)
    values = [(m.point.name, m.value) for batch in batches for m in batch.measurements()]
    assert values == [("F1/U", 10.1), ("F1/I", 120.0), ("F1/U", 10.4), ("F1/I", 0.0)]


async def test_sinks_get_only_reported_changes(make_kernel):
    kernel = make_kernel(p.test_types, deployment=p.deployment(sources="settings = { deadband = 1.0 }"))
    async with kernel:
        source = p.ManualSource.instances["rtu"]
        await source.ready.wait()
        source.publish([10.0, 20.0, 30.0])
        source.publish([10.5, 20.0, 31.5])
        await asyncio.sleep(0.05)
    batches = p.ListSink.instances["log"].of_type(MeasurementBatch)
    assert [list(b.names) for b in batches] == [["rtu/P0", "rtu/P1", "rtu/P2"], ["rtu/P2"]]
    assert batches[1].values.tolist() == [31.5]


class FailingSource(Source):
    runs = 0

    def points(self):
        return []

    async def run(self, context):
        FailingSource.runs += 1
        raise ConnectionRefusedError("RTU 10.0.0.1:2404 refused")


class failing_types:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_add_source_types(registry):
        registry.add("failing", FailingSource)


async def test_failing_source_is_alarmed_and_restarted(make_kernel, monkeypatch):
    import dms_kernel.kernel as kernel_module

    real_sleep = asyncio.sleep
    monkeypatch.setattr(kernel_module.asyncio, "sleep", lambda seconds: real_sleep(min(seconds, 0.01)))
    FailingSource.runs = 0
    text = p.deployment() + '[[sources]]\nname = "bad"\ntype = "failing"\n'
    kernel = make_kernel(p.test_types, failing_types, deployment=text)
    async with kernel:
        source = p.ManualSource.instances["rtu"]
        await source.ready.wait()
        await real_sleep(0.1)
        source.publish([1.0])  # the healthy source keeps working
        await real_sleep(0.02)
    assert FailingSource.runs >= 2
    assert kernel.counters["source_restarts"] >= 2
    alarms = p.ListSink.instances["log"].of_type(Alarm)
    assert alarms[0].message == "source 'bad' failed: ConnectionRefusedError: RTU 10.0.0.1:2404 refused"
    assert alarms[0].category == "comms"
    assert kernel.points.read("rtu/P0").value == 1.0


async def test_malformed_and_foreign_batches_are_dropped(make_kernel, caplog):
    text = p.deployment() + '[[sources]]\nname = "other"\ntype = "manual"\n'
    kernel = make_kernel(p.test_types, deployment=text)
    async with kernel:
        rtu = p.ManualSource.instances["rtu"]
        other = p.ManualSource.instances["other"]
        await rtu.ready.wait()
        await other.ready.wait()
        rtu.publish([1.0, 2.0])
        rtu.context.publish(MeasurementBatch("rtu", rtu.numbers, [5.0], [0], [0.0]))  # lengths differ
        rtu.context.publish(MeasurementBatch("rtu", other.numbers, [9.0, 9.0, 9.0], [0, 0, 0], [0.0] * 3))
        rtu.context.publish_one(int(other.numbers[0]), 9.0)
        rtu.publish([3.0])
    assert kernel.points.read("rtu/P0").value == 3.0
    assert np.isnan(kernel.points.read("other/P0").value)
    assert kernel.counters["malformed_batches"] == 3
    assert "source 'rtu' published a malformed batch (points 3, values 1" in caplog.text
    assert "source 'rtu' published points it does not own" in caplog.text


class replacement_solver:  # noqa: N801
    @staticmethod
    @hookimpl
    async def dms_run_study(study, model, snapshot, options):
        if study == "mean_value":
            return StudyResult(study, "replacement", True, {"mean": -1.0})
        return None


async def test_default_solver_and_its_replacement(make_kernel):
    kernel = make_kernel(p.test_types, p.default_solver, deployment=p.deployment())
    async with kernel:
        source = p.ManualSource.instances["rtu"]
        await source.ready.wait()
        source.publish([1.0, 2.0, 3.0])
        result = await kernel.run_study("mean_value")
        with pytest.raises(StudyError, match="no plugin returned a result for study 'short_circuit'"):
            await kernel.run_study("short_circuit")
    assert result.solver == "default_solver"
    assert result.data["mean"] == pytest.approx(2.0)  # mean of 1, 2, 3; breakers never received (NaN) are ignored
    replaced = make_kernel(p.test_types, p.default_solver, ("vendor", replacement_solver), deployment=p.deployment())
    async with replaced:
        result = await replaced.run_study("mean_value")
    assert result.solver == "replacement"


class voltage_controller:  # noqa: N801
    """Proposes opening CB0 when the mean is above 50."""

    @staticmethod
    @hookimpl
    def dms_propose_actions(result, snapshot):
        if result.data.get("mean", 0) > 50:
            return [ControlAction(Command("rtu/CB0", 1, originator="controller:voltage"), "voltage_controller", "mean above 50")]
        return None


async def test_controller_actions_go_through_command_path(make_kernel):
    text = p.deployment() + '[[jobs]]\nstudy = "mean_value"\nperiod_s = 0.05\n'
    kernel = make_kernel(p.test_types, p.default_solver, voltage_controller, deployment=text)
    async with kernel:
        source = p.ManualSource.instances["rtu"]
        await source.ready.wait()
        source.publish([10.0, 20.0, 30.0])
        await asyncio.sleep(0.12)
        assert source.operated == []
        source.publish([100.0, 100.0, 100.0])
        await asyncio.sleep(0.12)
    assert source.operated and source.operated[0] == ("rtu/CB0", 1)
    sink = p.ListSink.instances["log"]
    assert sink.of_type(ControlAction)[0].rationale == "mean above 50"
    assert all(r.ok for r in sink.of_type(CommandResult))
    assert {r.study for r in sink.of_type(StudyResult)} == {"mean_value"}


def test_cli_run_minimal_example_shows_values_flowing():
    result = run_leitstand(["run", "examples/minimal/deployment.toml", "--duration", "1.5"])
    assert result.returncode == 0, result.stderr
    assert "deployment 'Minimal demo'" in result.stderr
    assert "ready in" in result.stderr
    assert "rtu1: 20 changed values" in result.stdout
    received = int(result.stderr.split("stopped: ")[1].split()[0])
    assert received >= 60  # 30 points, at least two cycles


def test_cli_points_json():
    result = run_leitstand(["points", "examples/minimal/deployment.toml", "--json"])
    assert result.returncode == 0, result.stderr
    points = json.loads(result.stdout)
    assert len(points) == 32
    assert points[0] == {
        "number": 0, "name": "S1/F1/U0", "source": "rtu1", "kind": "analog", "unit": "kV", "deadband": 0.02, "controllable": False,
    }
    assert [p["name"] for p in points if p["controllable"]] == ["S1/F1/USP0", "S1/F1/USP1"]


async def test_set_quality_keeps_values_and_reaches_sinks(make_kernel):
    from dms_hookspecs import Quality, Validity

    kernel = make_kernel(p.test_types, deployment=p.deployment())
    async with kernel:
        source = p.ManualSource.instances["rtu"]
        await source.ready.wait()
        source.publish([1.0, 2.0, 3.0])
        questionable = Quality(validity=Validity.QUESTIONABLE).to_bits()
        kernel.set_quality(["rtu/P1"], questionable, source="state_estimation")
        await asyncio.sleep(0.05)
    assert kernel.points.read("rtu/P1").value == 2.0
    assert kernel.points.read("rtu/P1").quality.validity is Validity.QUESTIONABLE
    last = p.ListSink.instances["log"].of_type(MeasurementBatch)[-1]
    assert (last.source, list(last.names)) == ("state_estimation", ["rtu/P1"])


class other_study_solver:  # noqa: N801
    """A synchronous solver of another study: it must not even be asked for ``mean_value``."""

    asked: ClassVar[list[str]] = []

    @staticmethod
    @hookimpl
    def dms_studies():
        return ["other_study"]

    @staticmethod
    @hookimpl
    def dms_run_study(study, model, snapshot, options):
        other_study_solver.asked.append(study)
        return StudyResult(study, "other", True, {}) if study == "other_study" else None


async def test_plugins_are_asked_only_for_the_studies_they_list(make_kernel):
    other_study_solver.asked.clear()
    kernel = make_kernel(p.test_types, p.default_solver, ("other", other_study_solver), deployment=p.deployment())
    async with kernel:
        assert (await kernel.run_study("mean_value")).solver == "default_solver"
        assert other_study_solver.asked == []  # registered last, so it would have been asked first
        assert (await kernel.run_study("other_study")).solver == "other"
    assert other_study_solver.asked == ["other_study"]


class StubbornSource(PublishingSource):
    """Swallows the first cancel and keeps running, as a source does when Python 3.11's
    ``asyncio.wait_for`` loses a cancel that races with its timeout."""

    def declare_points(self):
        return [PointSpec("stubborn/P")]

    async def run(self, context):
        self.context = context
        self.ready.set()
        self.swallowed = 0
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if self.swallowed:
                    raise
                self.swallowed += 1


async def test_stop_cancels_a_source_again_that_swallowed_its_cancel(make_kernel, caplog):
    text = p.deployment() + '[[sources]]\nname = "stubborn"\ntype = "stubborn"\n'
    kernel = make_kernel(p.test_types, source_plugin("stubborn", StubbornSource), deployment=text)
    async with kernel:
        source = StubbornSource.instances["stubborn"]
        await source.ready.wait()
        started = time.monotonic()
    assert time.monotonic() - started < 3 * kernel_module.CANCEL_WAIT_S
    assert source.swallowed == 1
    assert "source:stubborn still running after cancel; cancelling again" in caplog.text
    assert not kernel._source_tasks
