"""Limit checks with hysteresis on power-flow results."""

from __future__ import annotations

import math

import pytest

import dms_limits.plugin
from dms_hookspecs import AlarmState, StudyResult, hookimpl
from dms_kernel.errors import PluginError
from dms_kernel.model.results import balanced_phases, power_flow_data
from dms_limits.checker import LimitChecker, LimitSettings


def result(vm_by_node, loading=50.0, p_trafo=1.0, kv=20.0):
    """A balanced result: every value on phases 1-3, a third of the power per phase row."""
    nodes = []
    for node, vm in vm_by_node.items():
        nodes += balanced_phases(node, node.lower(), vm, 0.0, vm * kv / math.sqrt(3))
    branches = [("T1", "t1", "PowerTransformer", phase, 0.05, p_trafo / 3, 0.1, -p_trafo / 3, -0.1, loading) for phase in (1, 2, 3)]
    data = power_flow_data(nodes, branches, losses_mw=0.01, losses_mvar=0.0, unbalanced=False)
    return StudyResult("power_flow", "test", True, data)


def test_voltage_violation_raises_once_and_clears_with_hysteresis():
    checker = LimitChecker(LimitSettings())
    raised = checker.check(result({"N1": 1.0, "N2": 1.12}))
    assert [a.message for a in raised] == ["voltage 1.120 pu at node 'n2' all phases above 1.100 pu"]
    assert all(a.state is AlarmState.RAISED and a.category == "limit" for a in raised)
    assert checker.check(result({"N1": 1.0, "N2": 1.13})) == []  # still active: not raised again
    assert checker.check(result({"N1": 1.0, "N2": 1.098})) == []  # inside band but within hysteresis
    cleared = checker.check(result({"N1": 1.0, "N2": 1.09}))
    assert [a.state for a in cleared] == [AlarmState.CLEARED]
    assert [a.id for a in cleared] == [a.id for a in raised]  # clear refers to the raised alarm


def test_undervoltage_and_per_level_band():
    checker = LimitChecker(LimitSettings(voltage_bands={20.0: (0.95, 1.05), 0.4: (0.9, 1.1)}))
    alarms = checker.check(result({"N1": 0.94}))
    assert alarms and "below 0.950 pu" in alarms[0].message
    lv = LimitChecker(LimitSettings(voltage_bands={20.0: (0.95, 1.05), 0.4: (0.9, 1.1)}))
    assert lv.check(result({"N1": 0.94}, kv=0.4)) == []  # LV band is ±10 %


def test_deenergised_nodes_are_not_voltage_violations():
    checker = LimitChecker(LimitSettings())
    assert checker.check(result({"N1": 1.0, "N2": float("nan"), "N3": 0.0})) == []


def test_thermal_loading_and_reverse_flow():
    checker = LimitChecker(LimitSettings())
    alarms = checker.check(result({"N1": 1.0}, loading=130.0, p_trafo=-0.5))
    messages = sorted(a.message for a in alarms)
    assert messages == [
        "PowerTransformer 't1' all phases loaded 130.0 % (limit 100 %)",
        "reverse power flow 0.500 MW through transformer 't1'",
    ]
    assert checker.check(result({"N1": 1.0}, loading=99.0, p_trafo=-0.1)) == []  # hysteresis on both
    cleared = checker.check(result({"N1": 1.0}, loading=97.0, p_trafo=0.2))
    assert sorted(a.state.value for a in cleared) == ["cleared", "cleared"]


def test_unbalanced_results_are_checked_per_phase():
    rows = [("N1", "n1", 1, 1.0, 0.0, 11.5), ("N1", "n1", 2, 1.12, -120.0, 12.9), ("N1", "n1", 3, 0.88, 120.0, 10.1)]
    data = power_flow_data(rows, (), losses_mw=0.0, losses_mvar=0.0, unbalanced=True)
    alarms = LimitChecker(LimitSettings()).check(StudyResult("power_flow", "opendss", True, data))
    assert sorted(a.message for a in alarms) == [
        "voltage 0.880 pu at node 'n1' phase 3 below 0.900 pu",
        "voltage 1.120 pu at node 'n1' phase 2 above 1.100 pu",
    ]


def test_other_studies_and_failed_runs_are_ignored():
    checker = LimitChecker(LimitSettings())
    assert checker.check(StudyResult("state_estimation", "x", True, {})) == []
    assert checker.check(StudyResult("power_flow", "x", False, {}, message="diverged")) == []


class solver:  # noqa: N801
    """Returns the voltage given in the job options (the limits plugin checks what it gets)."""

    @staticmethod
    @hookimpl
    def dms_studies():
        return ["power_flow"]

    @staticmethod
    @hookimpl
    def dms_run_study(study, options):
        return result({"N1": options["vm"]})


async def test_limits_in_kernel_with_settings(make_kernel):
    from plugins_for_tests import ListSink, test_types

    kernel = make_kernel(
        ("limits", dms_limits.plugin), ("solver", solver), test_types,
        deployment='[deployment]\nname = "t"\n[settings.limits]\nvoltage_band_pu = [0.97, 1.03]\n[[sinks]]\nname = "log"\ntype = "list"\n',
    )
    async with kernel:
        await kernel.run_study("power_flow", {"vm": 1.04})
        await kernel.run_study("power_flow", {"vm": 1.0})
    alarms = [e for e in ListSink.instances["log"].events if type(e).__name__ == "Alarm" and e.category == "limit"]
    assert [a.state for a in alarms] == [AlarmState.RAISED, AlarmState.CLEARED]
    assert "above 1.030 pu" in alarms[0].message


async def test_bad_band_setting_is_named(make_kernel):
    kernel = make_kernel(("limits", dms_limits.plugin), deployment='[deployment]\nname = "t"\n[settings.limits]\nvoltage_band_pu = [1.1, 0.9]\n')
    with pytest.raises(PluginError, match=r"plugin 'limits'.*dms_startup.*voltage_band_pu: expected \[low, high\]"):
        await kernel.start()
