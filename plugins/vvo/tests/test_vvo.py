"""Volt-VAR optimisation on real power flows: CIGRE MV with OLTCs, a capacitor bank and PV
inverters (power-grid-model), the IEEE 13-node feeder's regulators and capacitors (OpenDSS),
checked against exhaustive search and over a day of SimBench profiles."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import dms_vvo.plugin
import numpy as np
import pytest

from dms_kernel.model import EnergyConsumer, LinearShuntCompensator, PowerElectronicsConnection, RatioTapChanger
from dms_vvo import Evaluator, Problem, find_controls, optimise

sys.path.insert(0, str(Path(__file__).parent))
from vvo_cases import cigre_vvo  # noqa: E402


def _state(model):
    return ([c.step for c in model.of_type(RatioTapChanger)], [s.sections for s in model.of_type(LinearShuntCompensator)],
            [p.q_mvar for p in model.of_type(PowerElectronicsConnection)])


def test_finds_the_controls_of_the_model():
    controls = find_controls(cigre_vvo())
    kinds = [c.kind for c in controls]
    assert kinds.count("tap") == 2 and kinds.count("capacitor") == 1 and kinds.count("inverter") == 9
    tap = next(c for c in controls if c.kind == "tap")
    assert (tap.low, tap.high, tap.integer) == (-9, 9, True)
    inverter = next(c for c in controls if c.kind == "inverter")
    assert inverter.low == -inverter.high and inverter.high > 0 and not inverter.integer


@pytest.mark.parametrize("objective", ["losses", "cvr", "operations"])
def test_removes_the_violation_and_improves_the_objective(objective):
    model = cigre_vvo()
    before = _state(model)
    evaluate = Evaluator(model, find_controls(model))
    solution = optimise(evaluate, Problem(objective=objective))
    assert _state(model) == before  # every evaluation restores the model
    assert solution.violation_before > 0.01  # the case starts below 0.95 pu at the end of feeder 1
    assert solution.violation_after == 0.0
    assert 0.95 - 1e-9 <= solution.best.v_min and solution.best.v_max <= 1.05 + 1e-9
    if objective == "losses":
        assert solution.best.losses_mw < 0.95 * solution.base.losses_mw
    elif objective == "cvr":
        assert solution.best.demand_mw < solution.base.demand_mw
        assert solution.best.v_min < 0.955  # CVR pushes the lowest voltage to the bottom of the band
    else:
        assert solution.operations <= 1


@pytest.mark.parametrize("objective", ["losses", "cvr"])
def test_discrete_optimum_matches_exhaustive_search(objective):
    """Taps (±4 each) and the capacitor (0..3): 324 settings, each solved with the power flow."""
    model = cigre_vvo(tap_range=4)
    controls = find_controls(model, inverters=False)
    problem = Problem(objective=objective)
    evaluate = Evaluator(model, controls)
    solution = optimise(evaluate, problem)
    best = None
    grid = Evaluator(model, controls)
    for setting in itertools.product(range(-4, 5), range(-4, 5), range(0, 4)):
        m = grid(np.array(setting, dtype=float))
        if m.violation(problem.v_min, problem.v_max, problem.loading_max) > 1e-9:
            continue
        value = m.losses_mw if objective == "losses" else m.demand_mw
        best = value if best is None or value < best else best
    found = solution.best.losses_mw if objective == "losses" else solution.best.demand_mw
    print(f"\n{objective}: VVO {found:.6f} with {solution.power_flows} power flows, exhaustive {best:.6f} with 324")
    assert best is not None and solution.violation_after == 0.0
    assert found <= best * 1.01
    assert solution.power_flows < 324


def test_an_unreachable_band_is_reported_not_hidden():
    model = cigre_vvo(load_scale=2.5)
    result = dms_vvo.plugin.run_vvo(model, {"objective": "losses", "v_min": 0.99, "v_max": 1.0})
    assert result.converged
    assert not result.data["feasible"]
    assert "voltage band not reachable" in result.message
    assert result.data["after"]["violation"] <= result.data["before"]["violation"]


def test_ieee13_regulators_and_capacitors_with_opendss():
    from dms_opendss.plugin import dms_load_model

    model = dms_load_model("ieee13", ".")
    result = dms_vvo.plugin.run_vvo(model, {"objective": "losses", "solver": "opendss"})
    assert result.converged, result.message
    kinds = {s["kind"] for s in result.data["setpoints"]}
    assert "tap" in kinds
    before, after = result.data["before"], result.data["after"]
    assert before["v_max_pu"] > 1.05  # the published case: 1.0625 pu behind the regulators
    assert 0.95 <= after["v_min_pu"] and after["v_max_pu"] <= 1.05 + 1e-9
    assert "overloads remain" in result.message  # the test feeder's lines exceed their 400 A rating


def test_setpoints_in_the_study_result_and_closed_loop_commands():
    model = cigre_vvo()
    result = dms_vvo.plugin.run_vvo(model, {"objective": "losses", "mode": "closed_loop"})
    assert result.converged and result.data["setpoints"]
    assert dms_vvo.plugin.dms_propose_actions(result, None) == []  # no SCADA points bound: nothing to command
    advisory = dms_vvo.plugin.run_vvo(model, {"objective": "losses"})
    assert dms_vvo.plugin.dms_propose_actions(advisory, None) is None


def test_bad_options_name_the_culprit():
    with pytest.raises(ValueError, match="objective"):
        dms_vvo.plugin.run_vvo(cigre_vvo(), {"objective": "fastest"})
    with pytest.raises(ValueError, match="solver"):
        dms_vvo.plugin.run_vvo(cigre_vvo(), {"solver": "matpower"})


def test_a_day_of_simbench_profiles_on_cigre_mv():
    """24 hourly operating points of 2016-12-14, a winter weekday (SimBench H0/G0 load shapes
    peaking at 115 % of CIGRE's loads, PV3 infeed): VVO against fixed taps and capacitor
    (neutral, no inverter Q)."""
    from dms_forecast.profiles import load_profiles, pv_profiles

    day = slice("2016-12-14 00:00", "2016-12-14 23:45")
    year_loads = load_profiles(("H0-A", "G0-A"))
    year_pv = pv_profiles(("PV3",))["PV3"]
    loads = year_loads.loc[day].resample("1h").mean()
    loads = loads / loads.max()  # the day's shape; its peak is 115 % of CIGRE's nominal loads below
    pv = (year_pv / year_pv.max()).loc[day].resample("1h").mean()
    model = cigre_vvo()
    nominal_load = {e.mrid: (e.p_mw, e.q_mvar) for e in model.of_type(EnergyConsumer)}
    nominal_pv = {e.mrid: e.p_mw for e in model.of_type(PowerElectronicsConnection)}
    rated_pv = {e.mrid: e.rated_s_mva for e in model.of_type(PowerElectronicsConnection)}
    fixed_losses = vvo_losses = fixed_demand = cvr_demand = 0.0
    fixed_violations = vvo_violations = 0
    for hour in range(24):
        for load in model.of_type(EnergyConsumer):
            p, q = nominal_load[load.mrid]
            factor = loads["G0-A" if "CI" in load.name else "H0-A"].iloc[hour] * 1.15
            load.p_mw, load.q_mvar = p * factor, q * factor
        for inverter in model.of_type(PowerElectronicsConnection):
            inverter.p_mw = nominal_pv[inverter.mrid] * pv.iloc[hour] * 3.0  # a PV-heavy feeder
            inverter.rated_s_mva = rated_pv[inverter.mrid] * 3.0
        controls = find_controls(model)
        fixed = Evaluator(model, controls)(np.zeros(len(controls)))
        solution = optimise(Evaluator(model, controls), Problem(objective="losses"))
        cvr = optimise(Evaluator(model, controls), Problem(objective="cvr"))
        fixed_losses += fixed.losses_mw
        vvo_losses += solution.best.losses_mw
        fixed_demand += fixed.demand_mw
        cvr_demand += cvr.best.demand_mw
        fixed_violations += fixed.violation(0.95, 1.05, 100.0) > 1e-9
        vvo_violations += solution.violation_after > 1e-9
        assert solution.violation_after <= solution.violation_before
    print(f"\nday: losses fixed {fixed_losses:.3f} MWh -> VVO {vvo_losses:.3f} MWh ({100 * (1 - vvo_losses / fixed_losses):.1f} % less); "
          f"hours with violations {fixed_violations} -> {vvo_violations}; CVR demand {fixed_demand:.2f} -> {cvr_demand:.2f} MWh "
          f"({100 * (1 - cvr_demand / fixed_demand):.2f} % less, load model P0*V^1)")
    assert vvo_violations == 0 and fixed_violations > 0
    assert vvo_losses < 0.97 * fixed_losses
    assert cvr_demand < fixed_demand


def test_tap_operations_per_day_limit_the_moves():
    """Closed loop records the steps it commands; a control's steps in 24 h stay within its limit."""
    from dms_kernel.model import Analog, Discrete, PowerTransformer

    model = cigre_vvo()
    for transformer in model.of_type(PowerTransformer):  # SCADA points so closed loop can command the taps
        model.add(Discrete(f"{transformer.mrid}_tap_pos", power_system_resource=transformer.mrid, measurement_type="TapPosition",
                           point=f"{transformer.name}/Tap"))
    assert Analog  # (imported for symmetry with the SCADA helpers)
    options = {"objective": "losses", "mode": "closed_loop", "tap_operations_per_day": 2, "capacitors": False, "inverters": False}
    first = dms_vvo.plugin.run_vvo(model, options)
    taps = [s for s in first.data["setpoints"] if s["kind"] == "tap"]
    assert taps and all(abs(s["after"] - s["before"]) <= 2 for s in taps)
    actions = dms_vvo.plugin.dms_propose_actions(first, None)
    assert {a.command.target.name for a in actions} == {s["point"] for s in taps}
    for s in taps:  # the field followed the commands
        next(c for c in model.of_type(RatioTapChanger) if c.mrid == s["control"]).step = s["after"]
        assert dms_vvo.plugin.operations_today(model, s["control"]) == abs(round(s["after"] - s["before"]))
    second = dms_vvo.plugin.run_vvo(model, options)
    for s in second.data["setpoints"]:
        if s["kind"] == "tap":
            used = dms_vvo.plugin.operations_today(model, s["control"])
            assert used + abs(round(s["after"] - s["before"])) <= 2


def _in_band(m) -> bool:
    return m.violation(0.95, 1.05, np.inf, 0.0) <= 1e-9


def _best_fixed_setting(evaluate, set_hour, shape):
    """The best *fixed* regulator taps and capacitor states for the whole day, searched with the
    power flow: every tap common to the three regulators (full range) and both capacitors' states,
    then each regulator on its own within ±2 steps of the best common tap (125 × 4 settings).
    A setting must keep 0.95-1.05 pu on every node and phase in the lightest and in the most
    loaded hour (the loads follow one shape: the highest voltages come with the lightest load,
    the lowest with the peak); if no setting does, the peak hours it cannot hold are given up
    one at a time, from the highest load down. Among the settings found, the lowest day losses
    (every hour solved). Returns (setting, hours given up, settings solved)."""
    controls = evaluate.controls
    taps = [i for i, c in enumerate(controls) if c.kind == "tap"]
    caps = [i for i, c in enumerate(controls) if c.kind == "capacitor"]
    lows, highs = [int(c.low) for c in controls], [int(c.high) for c in controls]
    by_load = [int(h) for h in np.argsort(-shape, kind="stable")]
    light = by_load[-1]
    solved: dict[tuple[tuple[int, ...], int], object] = {}

    def metrics(setting, hour):
        key = (setting, hour)
        if key not in solved:
            set_hour(shape[hour])
            solved[key] = evaluate(np.array(setting, dtype=float))
        return solved[key]

    def settings(tap_values):
        for values in tap_values:
            for states in itertools.product(*(range(lows[i], highs[i] + 1) for i in caps)):
                setting = [0] * len(controls)
                for i, v in zip(taps, values, strict=True):
                    setting[i] = v
                for i, v in zip(caps, states, strict=True):
                    setting[i] = v
                yield tuple(setting)

    common = [(t,) * len(taps) for t in range(max(lows[i] for i in taps), min(highs[i] for i in taps) + 1)]
    for given_up in range(len(shape) - 1):
        peak = by_load[given_up]

        def excess(setting):  # the peak first: it rejects most settings with one power flow
            return sum(metrics(setting, h).violation(0.95, 1.05, np.inf, 0.0) for h in (peak, light))

        centre = min(settings(common), key=excess)
        window = itertools.product(*(range(max(lows[i], centre[i] - 2), min(highs[i], centre[i] + 2) + 1) for i in taps))
        found = [s for s in settings(window) if _in_band(metrics(s, peak)) and _in_band(metrics(s, light))]
        if found:
            best = min(found, key=lambda s: sum(metrics(s, h).losses_mw for h in range(len(shape))))
            return best, by_load[:given_up], len(solved)
    raise AssertionError("no fixed setting keeps the band even in the lightest hour")


def test_ieee13_over_a_day_of_simbench_profiles():
    """The IEEE 13-node feeder (OpenDSS; its loads constant PQ, Z and I as published) through 24
    hourly operating points (SimBench H0 shape of 2016-12-14, peak = the published loads): the
    VVO (losses; CVR) hour by hour against the published regulator taps and capacitors and
    against the best fixed taps and capacitor states a planner would set for the day."""
    from dms_forecast.profiles import load_profiles
    from dms_kernel.model import EnergyConsumerPhase
    from dms_opendss.plugin import dms_load_model

    day = load_profiles(("H0-A",)).loc["2016-12-14"].resample("1h").mean()["H0-A"]
    shape = (day / day.max()).to_numpy()
    model = dms_load_model("ieee13", ".")
    loads = [*model.of_type(EnergyConsumer), *model.of_type(EnergyConsumerPhase)]
    nominal = {o.mrid: (o.p_mw, o.q_mvar) for o in loads}

    def set_hour(factor):
        for obj in loads:
            p, q = nominal[obj.mrid]
            obj.p_mw, obj.q_mvar = p * factor, q * factor

    controls = find_controls(model)
    assert [c.kind for c in controls].count("tap") == 3 and [c.kind for c in controls].count("capacitor") == 2
    evaluate = Evaluator(model, controls, solver="opendss")
    published = evaluate.current()
    fixed, given_up, searched = _best_fixed_setting(evaluate, set_hour, shape)

    rows = []  # per hour: published, best fixed, VVO losses, VVO CVR
    for hour, factor in enumerate(shape):
        set_hour(factor)
        losses = optimise(Evaluator(model, controls, solver="opendss"), Problem(objective="losses"))
        cvr = optimise(Evaluator(model, controls, solver="opendss"), Problem(objective="cvr"))
        rows.append((evaluate(published), evaluate(np.array(fixed, dtype=float)), losses.best, cvr.best, hour))
    set_hour(1.0)

    def day(column, what):
        return sum(getattr(r[column], what) for r in rows)

    def outside(column):
        return sum(not _in_band(r[column]) for r in rows)

    names = ", ".join(f"{c.name} {v:g}" for c, v in zip(controls, fixed, strict=True))
    print(f"\nIEEE 13 day (loss MWh / hours outside 0.95-1.05 pu on any node and phase / demand P0*V^1 MWh):"
          f"\n  published taps and capacitors  {day(0, 'losses_mw'):.4f} / {outside(0):2d} / {day(0, 'demand_mw'):.2f}"
          f"\n  best fixed setting ({names}; {searched} settings x hours solved)"
          f"\n                                 {day(1, 'losses_mw'):.4f} / {outside(1):2d} / {day(1, 'demand_mw'):.2f}"
          f"  (no fixed setting holds the band in hours {sorted(given_up)})"
          f"\n  VVO losses, hourly             {day(2, 'losses_mw'):.4f} / {outside(2):2d} / {day(2, 'demand_mw'):.2f}"
          f"  ({100 * (1 - day(2, 'losses_mw') / day(1, 'losses_mw')):.2f} % less loss than the best fixed setting)"
          f"\n  VVO CVR, hourly                {day(3, 'losses_mw'):.4f} / {outside(3):2d} / {day(3, 'demand_mw'):.2f}"
          f"  ({100 * (1 - day(3, 'demand_mw') / day(1, 'demand_mw')):.2f} % less demand than the best fixed setting)")
    # the published taps hold 1.0625-1.069 pu behind the regulators all day
    assert outside(0) == 24
    # no fixed setting holds the band all day (the day's swing of phase C at 611 is wider than
    # the band): it fails exactly in the hours given up, the VVO holds it in every hour
    assert outside(1) == len(given_up) and outside(2) == 0 and outside(3) == 0
    # in every hour the fixed setting keeps the band, it is a candidate of the VVO's hourly
    # problem: the VVO's losses are not higher (up to the power flow's tolerance)
    for published_m, fixed_m, vvo_m, _, hour in rows:
        if _in_band(fixed_m):
            assert vvo_m.losses_mw <= fixed_m.losses_mw * (1 + 1e-4), hour
    # and over the day strictly lower, also counting the hours the fixed setting cannot hold
    assert day(2, "losses_mw") < day(1, "losses_mw")
    assert day(3, "demand_mw") < day(1, "demand_mw") and day(3, "demand_mw") < day(0, "demand_mw")
