"""Synchrophasors in state estimation: PMU voltage phasors (magnitude + angle) as power-grid-model
voltage phasor sensors make the estimate more accurate."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from dms_pandapower.examples import load_example
from dms_simulator.grid import GridTwin

from dms_kernel.model import Analog, EnergyConsumer
from dms_se.measurements import Accuracy
from dms_se.pgm_estimator import PgmEstimator
from dms_se.pp_estimator import PandapowerEstimator, nominal_powers

sys.path.insert(0, str(Path(__file__).parent))
from se_cases import equip, noisy, true_values, true_voltages  # noqa: E402

PMU_LOADS = ("Load R11", "Load R14", "Load CI9")


def with_pmus(model):
    """PMUs (magnitude and angle) at three feeder ends."""
    for name in PMU_LOADS:
        load = next(e for e in model.of_type(EnergyConsumer) if e.name == name)
        label = name.replace(" ", "_")
        model.add(Analog(f"{load.mrid}_PMU_U", terminal=load.terminals[0], power_system_resource=load.mrid,
                         measurement_type="LineToLineVoltage", unit="V", unit_multiplier="k", point=f"{label}/PMU_U"))
        model.add(Analog(f"{load.mrid}_PMU_A", terminal=load.terminals[0], power_system_resource=load.mrid,
                         measurement_type="PhaseVoltageAngle", unit="deg", point=f"{label}/PMU_A"))
    return model


def test_pmu_phasors_improve_the_estimate():
    model = with_pmus(equip(load_example("cigre_mv"), voltage_every=100, currents=False))
    nominal_powers(model, capture=True)
    twin = GridTwin(load_example("cigre_mv"), seed=1, start_hour=12.0)
    truth = true_values(model, twin)
    net = twin.network.net
    true_vm = true_voltages(twin)
    true_va = {node: float(net.res_bus.at[bus, "va_degree"]) for node, bus in twin.network.bus_of.items()}
    for m in model.of_type(Analog):
        if m.measurement_type == "PhaseVoltageAngle":
            truth[m.point_name] = true_va[model.node_of(model.get(m.terminal))]
    estimator = PgmEstimator(identify=PandapowerEstimator().run)
    pmu_points = {p for p in truth if "/PMU_" in p}
    accuracy = Accuracy(points={p: 0.001 for p in pmu_points if p.endswith("/PMU_U")})
    rng = np.random.default_rng(5)
    errors = {"with": ([], []), "without": ([], [])}
    for _ in range(5):
        measured = noisy({p: v for p, v in truth.items() if not p.endswith("/PMU_A")}, model, rng)
        for p in pmu_points:
            if p.endswith("/PMU_U"):
                measured[p] = truth[p] * (1 + 0.001 * rng.standard_normal())
            else:
                measured[p] = truth[p] + 0.01 * rng.standard_normal()  # 0.01 degrees
        for label in ("with", "without"):
            entry = estimator.entry(model, None)
            values = np.array([measured.get(r.point, np.nan) for r in entry.plan.rows]) * entry.plan.factors
            usable = np.isfinite(values)
            if label == "without":
                usable &= np.array([r.point not in pmu_points for r in entry.plan.rows])
            result = estimator.run(model, values, usable, None, accuracy, {"estimator": "power-grid-model"})
            assert result.converged, result.message
            nodes = result.data["nodes"]
            vm, va = np.asarray(nodes["vm_pu"]), np.asarray(nodes["va_deg"])
            for k, (node, phase) in enumerate(zip(nodes["node"], nodes["phase"], strict=True)):
                if phase == 1 and node in true_vm and np.isfinite(vm[k]):
                    errors[label][0].append(abs(vm[k] - true_vm[node]))
                    errors[label][1].append(abs(va[k] - true_va[node]))
    vm_with, va_with = (np.median(e) for e in errors["with"])
    vm_without, va_without = (np.median(e) for e in errors["without"])
    print(f"\nmedian |V error| {vm_without:.5f} -> {vm_with:.5f} pu, median |angle error| {va_without:.4f} -> {va_with:.4f} deg with 3 PMUs")
    assert vm_with < vm_without
    assert va_with < va_without


def test_pandapower_takes_the_angles_too():
    model = with_pmus(equip(load_example("cigre_mv"), voltage_every=100, currents=False))
    nominal_powers(model, capture=True)
    twin = GridTwin(load_example("cigre_mv"), seed=1, start_hour=12.0)
    truth = true_values(model, twin)
    net = twin.network.net
    for m in model.of_type(Analog):
        if m.measurement_type == "PhaseVoltageAngle":
            truth[m.point_name] = float(net.res_bus.at[twin.network.bus_of[model.node_of(model.get(m.terminal))], "va_degree"])
    estimator = PandapowerEstimator()
    entry = estimator.entry(model, None)
    values = np.array([truth.get(r.point, np.nan) for r in entry.plan.rows]) * entry.plan.factors
    result = estimator.run(model, values, np.isfinite(values), None, Accuracy(), {})
    assert result.converged, result.message
    rows = result.data["residuals"]
    angles = [k for k, p in enumerate(rows["point"]) if p.endswith("/PMU_A")]
    assert len(angles) == 3 and all(abs(rows["weighted_residual"][k]) < 0.5 for k in angles)
