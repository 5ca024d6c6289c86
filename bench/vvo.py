"""Volt-VAR optimisation: time per optimisation and the objective achieved, on 100 and 1,000 buses.

Network: ``radial_<N>`` (``dms_pandapower.examples``: HV/MV substations with OLTCs, ±9 steps of
1.5 %) with a PV inverter at every 10th load (P = 60 % of the load, S = 1.2 × P) and a
switched capacitor bank (3 × 0.3 Mvar) at the last node of every 20th feeder line chain
(every 100th load), loads at 150 % of nominal and the OLTCs at their neutral step, so the ends
of the feeders sag below the band.
Each row: the ``vvo`` plugin's optimisation (``dms_vvo.optimise`` with the power-grid-model
solver) from the present setting (taps at their model step, capacitors off, inverters at
Q = 0) — the "baseline" — for one objective; the time includes every power flow.

    .venv/bin/python bench/vvo.py [--sizes 100,1000] [--objectives losses,cvr,operations]

Target (issue 9): ≤ 5 s per optimisation for 1,000 buses.
"""

from __future__ import annotations

import argparse
import datetime
import time

from dms_pandapower.examples import load_example

from dms_kernel.model import EnergyConsumer, LinearShuntCompensator, PowerElectronicsConnection, RatioTapChanger
from dms_vvo import Evaluator, Problem, find_controls, optimise


def case(size: int):
    model = load_example(f"radial_{size}")
    loads = sorted(model.of_type(EnergyConsumer), key=lambda e: e.mrid)
    for k, load in enumerate(loads):
        node = model.nodes_of(load)[0]
        if k % 10 == 0:
            p = 0.6 * load.p_mw
            pv = model.add(PowerElectronicsConnection(f"pv_{k}", name=f"PV {k}", p_mw=p, q_mvar=0.0, rated_s_mva=1.2 * p))
            model.connect(pv, node)
        if k % 100 == 99:
            cap = model.add(LinearShuntCompensator(f"cap_{k}", name=f"C {k}", b_per_section_us=0.3e6 / (20e3**2) * 1e6,
                                                   maximum_sections=3, sections=0.0, normal_sections=0, nominal_kv=20.0))
            model.connect(cap, node)
        load.p_mw *= 1.5
        load.q_mvar *= 1.5
    for changer in model.of_type(RatioTapChanger):
        changer.step = 0.0  # the present setting: taps neutral
    return model


def run(size: int, objective: str) -> dict:
    model = case(size)
    controls = find_controls(model)
    evaluate = Evaluator(model, controls)
    evaluate(evaluate.current())  # conversion and first solve: once per model, not per optimisation
    evaluate.calls = 0
    began = time.perf_counter()
    solution = optimise(evaluate, Problem(objective=objective))
    elapsed = time.perf_counter() - began
    kinds = {k: sum(c.kind == k for c in controls) for k in ("tap", "capacitor", "inverter")}
    return {"size": size, "objective": objective, "seconds": elapsed, "flows": solution.power_flows, "controls": kinds,
            "before": solution.objective_before, "after": solution.objective_after, "v_before": solution.violation_before,
            "v_after": solution.violation_after, "vmin": (solution.base.v_min, solution.best.v_min), "ops": solution.operations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--objectives", default="losses,cvr,operations")
    args = parser.parse_args()
    rows = [run(int(s), o) for s in args.sizes.split(",") for o in args.objectives.split(",")]
    print(f"\nVolt-VAR optimisation on radial_<N> with OLTCs, capacitors and PV inverters ({datetime.date.today()})\n")
    print("| buses | controls (tap/cap/PV) | objective  | time s | power flows | objective before → after | violation before → after (pu) | V min before → after | tap/cap operations | ≤ 5 s |")
    print("|------:|-----------------------|------------|-------:|------------:|--------------------------|-------------------------------|----------------------|-------------------:|-------|")
    for r in rows:
        c = r["controls"]
        unit = {"losses": " MW", "cvr": " MW", "operations": ""}[r["objective"]]
        print(f"| {r['size']:>5,} | {c['tap']}/{c['capacitor']}/{c['inverter']:<17} | {r['objective']:<10} | {r['seconds']:>6.2f} | {r['flows']:>11} "
              f"| {r['before']:.4f} → {r['after']:.4f}{unit} | {r['v_before']:.4f} → {r['v_after']:.4f} "
              f"| {r['vmin'][0]:.4f} → {r['vmin'][1]:.4f} | {r['ops']:>18} | {'yes' if r['seconds'] <= 5.0 else 'NO'} |")
    print("\nbefore = the present setting (taps neutral, capacitors off, PV Q = 0); violation = voltage-band excess summed over nodes;")
    print("cvr objective = demand under the CVR load model P0·V^1.")


if __name__ == "__main__":
    main()
