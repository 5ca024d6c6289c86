"""Cyclic power flow on live measurements: SCADA points → model → pandapower → limits and topology events."""

from __future__ import annotations

import asyncio
import math

import dms_limits.plugin
import dms_pandapower.plugin
from dms_pandapower.examples import load_example

from dms_hookspecs import Alarm, AlarmState, StudyResult, TopologyChanged
from dms_kernel.model.results import rows
from dms_kernel.model.scada import add_scada_measurements, measurement_points
from dms_kernel.testing import PublishingSource, source_plugin
from plugins_for_tests import test_types


class ScadaSource(PublishingSource):
    """Declares the standard SCADA points of an example network; the test publishes values."""

    def declare_points(self):
        model = load_example("cigre_mv")
        add_scada_measurements(model)
        return measurement_points(model)


scada_plugin = source_plugin("scada", ScadaSource)


DEPLOYMENT = """
[deployment]
name = "CIGRE MV live"
model = "cigre_mv"
standard_measurements = true

[[sources]]
name = "scada"
type = "scada"

[[sinks]]
name = "log"
type = "list"
"""

NO_PV = {f"PV_{n}/P": 0.0 for n in (3, 4, 5, 6, 8, 9, 10, 11)} | {"WKA_7/P": 0.0}


def trafo_p(result: StudyResult) -> float:
    return sum(r["p_from_mw"] for r in rows(result.data["branches"]) if r["kind"] == "PowerTransformer")


async def test_measurements_drive_the_power_flow(make_kernel):
    kernel = make_kernel(("pandapower", dms_pandapower.plugin), ("limits", dms_limits.plugin), scada_plugin, test_types, deployment=DEPLOYMENT)
    async with kernel:
        assert len(kernel.live.bindings) == 22  # the source serves no smart meters: those loads stay pseudo-loads
        assert {m.measurement_type for m in kernel.live.unbound} == {"ThreePhaseActivePower"}
        source = await ScadaSource.running("scada")
        results = {}
        for head_mw in (20.0, 30.0):
            source.publish({**NO_PV, "Trafo_0-1/P": head_mw / 2, "Trafo_0-12/P": head_mw / 2, "external_grid_0/U": 110.0})
            results[head_mw] = await kernel.run_study("power_flow")
    for head_mw, result in results.items():
        assert result.converged
        # pseudo-loads follow the head measurement: transformers carry head + losses
        assert abs(trafo_p(result) - head_mw - result.data["losses_mw"]) < 0.02 * head_mw
    assert results[30.0].data["losses_mw"] > 1.8 * results[20.0].data["losses_mw"]  # losses grow ~ square of load


async def test_opening_a_breaker_publishes_topology_and_deenergises_in_the_result(make_kernel):
    kernel = make_kernel(("pandapower", dms_pandapower.plugin), scada_plugin, test_types, deployment=DEPLOYMENT)
    async with kernel:
        source = await ScadaSource.running("scada")
        source.publish({**NO_PV, "Trafo_0-1/P": 10.0, "Trafo_0-12/P": 10.0, "switch_6/Pos": 2, "switch_7/Pos": 2})
        before = await kernel.run_study("power_flow")
        source.publish({"switch_6/Pos": 1})  # feeder breaker opens (IEC 61850 DPS 1 = off)
        await asyncio.sleep(0.05)
        after = await kernel.run_study("power_flow")
    events = [e for e in kernel_sink_events() if isinstance(e, TopologyChanged)]
    assert len(events) == 1
    change = events[0]
    assert change.switches == ("switch_6",)
    assert change.deenergised and not change.energised
    dead = set(change.deenergised)
    vm_after = {r["node"]: r["vm_pu"] for r in rows(after.data["nodes"]) if r["phase"] == 1}
    vm_before = {r["node"]: r["vm_pu"] for r in rows(before.data["nodes"]) if r["phase"] == 1}
    assert all(math.isnan(vm_after[n]) for n in dead if n in vm_after)
    assert all(not math.isnan(vm_before[n]) for n in dead if n in vm_before)
    assert any(not math.isnan(v) for v in vm_after.values())


async def test_overload_raises_and_clears_limit_alarms(make_kernel):
    kernel = make_kernel(("pandapower", dms_pandapower.plugin), ("limits", dms_limits.plugin), scada_plugin, test_types, deployment=DEPLOYMENT)
    async with kernel:
        source = await ScadaSource.running("scada")
        source.publish({**NO_PV, "Trafo_0-1/P": 45.0, "Trafo_0-12/P": 45.0})
        heavy = await kernel.run_study("power_flow")
        source.publish({"Trafo_0-1/P": 5.0, "Trafo_0-12/P": 5.0})
        await kernel.run_study("power_flow")
    assert heavy.converged
    alarms = [e for e in kernel_sink_events() if isinstance(e, Alarm) and e.category == "limit"]
    raised = [a for a in alarms if a.state is AlarmState.RAISED]
    cleared = [a for a in alarms if a.state is AlarmState.CLEARED]
    assert raised, "an overloaded feeder must violate limits"
    assert {a.id for a in cleared} == {a.id for a in raised}


def kernel_sink_events():
    from plugins_for_tests import ListSink

    return ListSink.instances["log"].events
