"""State estimation against the simulator's true state: accuracy, bad data, observability.

Real calculations, no mocks: the GridTwin solves a pandapower power flow (the truth); its
point values get Gaussian noise at the stated accuracies (seeded) and are fed through a kernel
source into the point database; ``kernel.run_study("state_estimation")`` estimates.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import dms_se.plugin
import numpy as np
import pytest
from dms_pandapower.examples import load_example

from dms_hookspecs import Alarm, Setting, SettingsSchema, Validity, hookimpl
from dms_kernel.model.scada import measurement_points
from dms_kernel.testing import PublishingSource, source_plugin

sys.path.insert(0, str(Path(__file__).parent))
from se_cases import case, equip, noisy, sigma_of, true_values, true_voltages  # noqa: E402

REPORT: dict[str, dict[str, float]] = {}


class EquippedSource(PublishingSource):
    """Declares the measurement points of an equipped example network; the test publishes values."""

    settings_schema = SettingsSchema((Setting("model", str, "cigre_mv"),))

    def declare_points(self):
        return measurement_points(equip(load_example(self.settings["model"])))


scada_plugin = source_plugin("test", EquippedSource)


def deployment(model: str) -> str:
    return f"""
[deployment]
name = "se {model}"
model = "{model}"

[[sources]]
name = "scada"
type = "test"
settings = {{ model = "{model}" }}
"""


def model_plugin(name):
    class plugin:  # noqa: N801
        @staticmethod
        @hookimpl(tryfirst=True)
        def dms_load_model(location, base_dir):
            return equip(load_example(location)) if location == name else None

    return plugin


def make(make_kernel, name):
    import dms_pandapower.plugin

    return make_kernel(("se", dms_se.plugin), ("pandapower", dms_pandapower.plugin), model_plugin(name), scada_plugin, deployment=deployment(name))


def with_statuses(values: dict[str, float], twin) -> dict[str, float]:
    out = dict(values)
    for spec in twin.points():
        name = spec.id.name
        if name.endswith("/Pos") or name.endswith("/Tap"):
            out[name] = twin.read(name)[0]
    return out


def raw_voltage_errors(model, truth, measured, twin):
    """|measured - true| in pu for every voltage point."""
    errors = []
    net = twin.network.net
    for m in model.of_type(dms_se.measurements.Analog):
        if "Voltage" in m.measurement_type and m.point_name in measured:
            node = model.node_of(model.get(m.terminal))
            kv = net.bus.at[twin.network.bus_of[node], "vn_kv"]
            errors.append(abs(measured[m.point_name] - truth[m.point_name]) / kv)
    return np.asarray(errors)


ESTIMATORS = [
    pytest.param({"estimator": "pandapower"}, id="pandapower"),
    pytest.param({"estimator": "power-grid-model"}, id="pgm-iterative-linear"),
    pytest.param({"estimator": "power-grid-model", "calculation_method": "newton_raphson"}, id="pgm-newton-raphson"),
    pytest.param({"estimator": "power-grid-model", "unbalanced": True}, id="pgm-asymmetric"),
]


@pytest.mark.parametrize("options", ESTIMATORS)
@pytest.mark.parametrize("name", ["cigre_mv", "mv_oberrhein"])
async def test_estimate_is_closer_to_the_truth_than_the_measurements(make_kernel, name, options):
    model, twin = case(name)
    truth = true_values(model, twin)
    true_vm = true_voltages(twin)
    rng = np.random.default_rng(42)
    kernel = make(make_kernel, name)
    est_errors, raw_errors = [], []
    async with kernel:
        source = await EquippedSource.running("scada")
        for _ in range(3):  # three independent noise draws
            measured = noisy(truth, model, rng)
            source.publish(with_statuses(measured, twin))
            result = await kernel.run_study("state_estimation", options)
            assert result.converged, result.message
            assert result.solver == options["estimator"]
            assert not result.data["suspect"], result.data["bad_data"]
            est_errors.append(dms_se.plugin.voltage_errors(result, true_vm))
            raw_errors.append(raw_voltage_errors(model, truth, measured, twin))
            # at the measured buses too: the estimate beats the raw voltage measurement on average
    est, raw = np.concatenate(est_errors), np.concatenate(raw_errors)
    REPORT[f"{name} {result.solver} {options.get('calculation_method', '')}".strip()] = {"median_pu": float(np.median(est)), "max_pu": float(est.max()), "raw_median_pu": float(np.median(raw)), "raw_max_pu": float(raw.max())}
    print(f"\n{name} {options}: |V_est - V_true| median {np.median(est):.5f} pu, max {est.max():.5f} pu; raw voltage measurements median {np.median(raw):.5f}, max {raw.max():.5f} pu")
    assert np.median(est) < np.median(raw)
    assert est.max() < 0.01


@pytest.mark.parametrize("options", [ESTIMATORS[0], ESTIMATORS[1], ESTIMATORS[3]])
async def test_single_gross_errors_are_identified_and_flagged(make_kernel, options):
    name = "cigre_mv"
    model, twin = case(name)
    truth = true_values(model, twin)
    rng = np.random.default_rng(7)
    trials, hits = 20, 0
    kernel = make(make_kernel, name)
    misses = []
    async with kernel:
        source = await EquippedSource.running("scada")
        source.publish(with_statuses(noisy(truth, model, rng), twin))
        clean = await kernel.run_study("state_estimation", {"estimator": "pandapower"})  # detectability needs the gain matrix
        rows = clean.data["residuals"]
        # identifiable measurements: a point of its own (not an aggregated bus injection) whose
        # 20-sigma error shows as a normalised residual >= 6 (detectability sqrt(Omega_ii)/sigma >= 0.3);
        # critical or barely redundant ones (smart-meter P behind a feeder-head measurement) are not
        candidates = sorted(
            p for p, pseudo, d in zip(rows["point"], rows["pseudo"], rows["detectability"], strict=True)
            if not pseudo and "+" not in p and d >= 0.3
        )
        print(f"\nidentifiable measurements: {len(candidates)} of {sum(not p for p in rows['pseudo'])}: {candidates}")
        assert len(candidates) >= 8
        for _ in range(trials):
            measured = noisy(truth, model, rng)
            bad = candidates[int(rng.integers(len(candidates)))]
            sign = 1.0 if rng.random() < 0.5 else -1.0
            measured[bad] = truth[bad] + sign * 20.0 * sigma_of(bad, truth[bad], model)
            source.publish(with_statuses(measured, twin))  # fresh values: quality good again
            result = await kernel.run_study("state_estimation", options)
            assert result.converged, (bad, result.message)
            if bad in result.data["suspect"] and len(result.data["suspect"]) <= 2:
                hits += 1
                assert kernel.snapshot().get(bad).quality.validity is Validity.QUESTIONABLE
            else:
                misses.append((bad, result.data["suspect"], result.data["chi2"]))
    print(f"\ngross errors (20 sigma) identified in {hits}/{trials} trials; misses: {misses}")
    assert hits >= 0.95 * trials, misses


@pytest.mark.parametrize("options", [ESTIMATORS[0], ESTIMATORS[1], ESTIMATORS[3]])
async def test_bad_data_raises_an_alarm(make_kernel, options):
    from plugins_for_tests import ListSink

    name = "cigre_mv"
    model, twin = case(name)
    truth = true_values(model, twin)
    measured = noisy(truth, model, np.random.default_rng(3))
    bad = "Line_1-2/I" if "Line_1-2/I" in truth else sorted(truth)[0]
    measured[bad] = truth[bad] * 1.5
    alarms = []
    kernel = make(make_kernel, name)
    kernel.bus.subscribe("test-alarms", _collect(alarms), (Alarm,), 1000)
    async with kernel:
        source = await EquippedSource.running("scada")
        source.publish(with_statuses(measured, twin))
        result = await kernel.run_study("state_estimation", options)
        await asyncio.sleep(0.05)
        quality = kernel.snapshot().get(bad).quality
    assert bad in result.data["suspect"]
    assert quality.validity is Validity.QUESTIONABLE
    bad_data = [a for a in alarms if a.category == "bad-data"]
    assert bad_data and bad_data[0].point is not None and bad_data[0].point.name == bad
    assert "normalised residual" in bad_data[0].message
    rows = result.data["residuals"]
    assert len(rows["point"]) == len(rows["normalised_residual"])
    _ = ListSink


def _collect(into):
    async def handler(events):
        into.extend(events)

    return handler


@pytest.mark.parametrize("options", ESTIMATORS)
async def test_no_voltage_measurement_is_unobservable_and_names_the_buses(make_kernel, options):
    name = "cigre_mv"
    model, twin = case(name)
    truth = true_values(model, twin)
    measured = {p: v for p, v in truth.items() if not p.endswith("/U")}  # no voltage anywhere
    kernel = make(make_kernel, name)
    async with kernel:
        source = await EquippedSource.running("scada")
        source.publish(with_statuses(measured, twin))
        result = await kernel.run_study("state_estimation", options)
    assert not result.converged
    assert "no voltage measurement" in result.message
    assert "bus 1" in result.message.lower() or "bus" in result.message.lower()
    print("\n" + result.message)


class forecast_plugin:  # noqa: N801
    """A ``forecast`` study answering with given series (the real plugin needs weeks of history)."""

    series: dict = {}

    @staticmethod
    @hookimpl
    def dms_studies():
        return ["forecast"]

    @staticmethod
    @hookimpl
    def dms_run_study(study, model, snapshot, options):
        from dms_hookspecs import StudyResult

        if study != "forecast":
            return None
        return StudyResult("forecast", "test", True, {"forecasts": forecast_plugin.series, "step_s": 900})


@pytest.mark.parametrize("options", ESTIMATORS[:2])
async def test_a_missing_meter_value_is_replaced_by_its_forecast(make_kernel, options):
    import dms_pandapower.plugin

    name = "cigre_mv"
    model, twin = case(name)
    truth = true_values(model, twin)
    meter = max((p for p in truth if p.startswith("Load_R") and p.endswith("/P")), key=lambda p: truth[p])  # the largest residential load
    measured = noisy(truth, model, np.random.default_rng(11))
    del measured[meter]  # the meter did not deliver: the point stays NaN / invalid
    now = time.time()
    kernel = make_kernel(("se", dms_se.plugin), ("pandapower", dms_pandapower.plugin), model_plugin(name), scada_plugin, ("fc", forecast_plugin), deployment=deployment(name))
    async with kernel:
        source = await EquippedSource.running("scada")
        source.publish(with_statuses(measured, twin))
        without = await kernel.run_study("state_estimation", options)
        forecast_plugin.series = {meter: {"time": [now - 900, now + 900], "value": [truth[meter] * 0.97, truth[meter] * 1.01]}}
        forecast = await kernel.run_study("forecast")
        assert forecast.converged
        with_forecast = await kernel.run_study("state_estimation", options)
    assert without.converged and with_forecast.converged, (without.message, with_forecast.message)
    assert "forecast_pseudo" not in without.data
    assert with_forecast.data["forecast_pseudo"] == [meter]
    assert "replaced by their forecast" in with_forecast.message

    rows = with_forecast.data["residuals"]
    if options["estimator"] == "pandapower":  # injections are aggregated per bus: the forecast is a part of its bus row
        assert any(meter in label.split("+") and not pseudo for label, pseudo in zip(rows["point"], rows["pseudo"], strict=True))
    else:  # one row per meter: the estimate follows the forecast (1 % above the truth now), not the profile
        value = float(rows["estimated"][rows["point"].index(meter)])
        assert abs(value - truth[meter]) < 0.03 * truth[meter], (value, truth[meter])
