"""State-based suppression on the CIGRE MV network: a breaker opens, alarms downstream are suppressed.

In the CIGRE MV model ``switch_6`` feeds transformer ``Trafo 0-1`` and the feeder with the PV
units ``PV 3`` … ``PV 11`` and ``WKA 7``; ``Trafo 0-12`` is fed through the other breaker.
"""

from __future__ import annotations

import asyncio
import time

import dms_pandapower.plugin
from dms_pandapower.examples import load_example

import dms_alarms.plugin
from dms_alarms import IsaState, manager_for
from dms_hookspecs import Alarm, AlarmPriority, AlarmState, PointId, hookimpl
from dms_kernel.model.scada import add_scada_measurements, measurement_points
from dms_kernel.testing import PublishingSource, source_plugin


class ScadaSource(PublishingSource):
    """Declares the standard SCADA points of the CIGRE MV network; the test publishes values."""

    def declare_points(self):
        model = load_example("cigre_mv")
        add_scada_measurements(model)
        return measurement_points(model)


scada_plugin = source_plugin("scada", ScadaSource)


DEPLOYMENT = """
[deployment]
name = "CIGRE MV alarms"
model = "cigre_mv"
standard_measurements = true

[settings.alarms]
tick_s = 0.02
protection = { grace_s = 0.05 }

[[sources]]
name = "scada"
type = "scada"
"""

SWITCHES = ["switch_6", "switch_7"]  # the two transformer breakers (the tie switches S1-S3 stay open)


async def until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def bad_data(point):
    return Alarm(f"bad data: {point} is inconsistent with the state estimate", AlarmPriority.MEDIUM, source="state_estimation", point=PointId(point), category="bad-data")


async def test_alarms_downstream_of_an_open_breaker_are_suppressed_and_released(make_kernel):
    kernel = make_kernel(("pandapower", dms_pandapower.plugin), ("alarms", dms_alarms.plugin), scada_plugin, deployment=DEPLOYMENT)
    async with kernel:
        source = await ScadaSource.running("scada")
        alarms = manager_for(kernel)
        source.publish({f"{s}/Pos": 2 for s in SWITCHES} | {"PV_4/P": 0.02, "Trafo_0-12/P": 10.0})
        kernel.emit(bad_data("PV_4/P"))  # on the feeder behind switch_6
        kernel.emit(bad_data("Trafo_0-12/P"))  # fed through the other breaker
        kernel.emit(Alarm("Trafo 'Trafo 0-1' all phases loaded 85.0 % (limit 80 %)", AlarmPriority.MEDIUM, source="limits", category="limit"))
        await until(lambda: len(alarms) == 3)
        by_point = {a.point or a.message: a for a in alarms}
        pv, trafo_12 = by_point["PV_4/P"], by_point["Trafo_0-12/P"]
        trafo_1 = next(a for a in alarms if a.category == "limit")
        assert pv.elements == ("sgen_1",) and trafo_1.elements == ("trafo_0",)
        assert not any(a.suppressed for a in alarms)

        source.publish({"switch_6/Pos": 1})  # the breaker trips: its feeder is de-energised
        await until(lambda: pv.suppressed and trafo_1.suppressed)
        assert pv.suppressed_by["state"].startswith("de-energised") and not trafo_12.suppressed
        await until(lambda: len(alarms.active(category="protection")) == 1)
        [trip] = alarms.active(category="protection")
        assert trip.point == "switch_6/Pos" and not trip.suppressed  # the cause stays visible
        kernel.emit(bad_data("PV_8/P"))  # raised while de-energised: suppressed from the start
        await until(lambda: len(alarms.suppressed("state")) == 3)
        assert {a.id for a in alarms.active()} == {trip.id, trafo_12.id}

        source.publish({"switch_6/Pos": 2})  # reclosed
        await until(lambda: not alarms.suppressed())
        assert trip.state is IsaState.UNACK_RTN
        assert len(alarms.active()) == 5


async def test_state_changes_are_emitted_for_the_historian(make_kernel):
    from plugins_for_tests import ListSink

    class sink_plugin:  # noqa: N801
        @staticmethod
        @hookimpl
        def dms_add_sink_types(registry):
            registry.add("list", ListSink)

    deployment = DEPLOYMENT + '\n[[sinks]]\nname = "log"\ntype = "list"\n'
    kernel = make_kernel(("pandapower", dms_pandapower.plugin), ("alarms", dms_alarms.plugin), scada_plugin, sink_plugin, deployment=deployment)
    async with kernel:
        source = await ScadaSource.running("scada")
        alarms = manager_for(kernel)
        source.publish({f"{s}/Pos": 2 for s in SWITCHES})
        kernel.emit(bad_data("PV_4/P"))
        await until(lambda: len(alarms) == 1)
        [alarm] = list(alarms)
        source.publish({"switch_6/Pos": 1})
        await until(lambda: alarm.suppressed)
        await asyncio.sleep(0.1)
    states = [e.state for e in ListSink.instances["log"].of_type(Alarm) if e.id == alarm.id]
    assert states == [AlarmState.RAISED, AlarmState.SUPPRESSED]
