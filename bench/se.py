"""Cyclic state estimation: point database → estimate → results published, per network size.

Runs a real kernel per network size with the ``se`` plugin (estimator ``"pandapower"``), the
power-grid-model and limits plugins, and a bench plugin. The bench plugin loads ``radial_<N>``
(``dms_pandapower.examples``) with the SCADA measurements of
``add_scada_measurements(model, meters=True)`` (source voltage, feeder-breaker positions,
transformer taps and P/Q, a smart-meter P of every load) and a bench source that declares
those points. The true values come once from a pandapower power flow of the model (the ``se``
plugin's ``offline_values``: its converted net, its measurement plan); every cycle the source
publishes them with fresh Gaussian noise at the plugin's default accuracies (voltage 0.5 %,
power 2 %, floor 0.002 MW) and the timed step is
``await kernel.run_study("state_estimation", {"estimator": "pandapower"})``: snapshot → live
model update → measurement table + observability check + WLS + bad-data test (chi-squared,
largest normalised residual; worker thread) → result event → result checks.

In the same run, alternating with the plugin cycles, the bare library call is timed:
pandapower's own ``pandapower.estimation.estimate(net, algorithm="wls", ...)`` on a copy of the
plugin's converted net with the measurement table the plugin built in the cycle just before
(same measurements, same zero-injection buses), once with ``init="flat"`` (the plugin's start,
the "bare call" column and the ratio) and once with ``init="results"`` (warm start from the
previous estimate; printed below the table). The bare call does no bad-data processing and
no observability check.

With ``--full`` (default for sizes ≥ 10,000) the full DMS cycle is timed as well: the source
publishes a scan (ingest into the point database) → ``state_estimation`` (pandapower) →
``power_flow`` with solver ``"power-grid-model"`` → limit check (``dms_check_result``, alarms).

    .venv/bin/python bench/se.py [--sizes 100,1000,10000] [--cycles 20] [--budget 30] [--full 10000]

"startup" = kernel prepare/start (model load, SCADA measurements, truth power flow, point
binding) + the first estimation (conversion, measurement plan). The timed loop of a size stops
after ``--cycles`` cycles or, once 5 cycles are timed, after ``--budget`` seconds (half of it for
the full cycle); a size whose first estimation takes > 60 s is skipped. Targets (issue 6): cycle ≤ 1.5× the bare call; the full DMS cycle on 10,000 buses
≤ 100 ms at p95 with the fastest plugins.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime
import gc
import statistics
import time
import warnings
from collections.abc import Callable
from typing import ClassVar

import dms_limits.plugin
import dms_pgm.plugin
import dms_se.plugin
import numpy as np
import pandapower.estimation as pp_estimation
from benchkit import BenchSource, bench_plugin, start_bench_kernel
from dms_pandapower.examples import load_example
from dms_pgm.prepared import PreparedCalculation, UpdatePusher
from dms_se.measurements import DEFAULT_FLOOR, DEFAULT_STD
from dms_se.pp_estimator import PandapowerEstimator, _Entry, nominal_powers

from dms_kernel.model.scada import add_scada_measurements, measurement_points

ESTIMATORS = ("pandapower", "power-grid-model")
WARMUP = 2
SKIP_AFTER_S = 60.0


class BenchScada(BenchSource):
    """Declares the model's measurement points; publishes one noisy scan per :meth:`scan` call."""

    truth: ClassVar[dict[str, float]] = {}
    sigma: ClassVar[dict[str, float]] = {}

    async def run(self, context) -> None:
        specs = self.points()
        names = [str(s.id) for s in specs]
        self.numbers = np.asarray(context.point_numbers(names), dtype=np.int64)
        self.base = np.asarray([BenchScada.truth[n] for n in names])
        self.std = np.asarray([BenchScada.sigma.get(n, 0.0) for n in names])
        self.context = context
        await asyncio.Event().wait()  # published by scan() from the bench loop

    def scan(self) -> None:
        """Publish every point once: the true value + N(0, σ) noise (discrete points exact)."""
        values = self.base + self.std * self.rng.standard_normal(self.base.size)
        self.publish(values)


def _scada_model(name: str):
    """The example with SCADA measurements + meters; true value and σ of every point (point units)."""
    model = load_example(name)
    add_scada_measurements(model, meters=True)
    nominal_powers(model, capture=True)  # profile P/Q, as the plugin's startup does
    entry = _Entry(model, None)
    values, usable = dms_se.plugin.offline_values(model, entry)
    truth: ClassVar[dict[str, float]] = {}
    sigma: ClassVar[dict[str, float]] = {}
    for k, row in enumerate(entry.plan.rows):
        if not usable[k]:
            continue
        value = float(values[k])
        truth[row.point] = value
        if row.kind == "v":
            sigma[row.point] = max(DEFAULT_STD["voltage"] * abs(value), DEFAULT_FLOOR["voltage"] * abs(value))
        else:  # p/q in MW/Mvar (factor 1 for the W/VAr points with multiplier M)
            sigma[row.point] = max(DEFAULT_STD["power"] * abs(value), DEFAULT_FLOOR["power"] / row.factor)
    for spec in measurement_points(model):
        point = str(spec.id)
        if point.endswith("/Pos"):
            truth[point] = 2.0  # IEC 61850 double point: closed
        elif point.endswith("/Tap"):
            transformer = model.get(point_owner(model, point))
            changers = [model.tap_changer(end) for end in model.ends(transformer)]
            truth[point] = next((c.step for c in changers if c is not None), 0.0)
        truth.setdefault(point, 0.0)
    BenchScada.truth, BenchScada.sigma = truth, sigma
    return model


def point_owner(model, point: str) -> str:
    from dms_kernel.model import Measurement

    return next(m.power_system_resource for m in model.of_type(Measurement) if m.point_name == point)


def _stats(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1e3


def bare_estimate(model, point_names: list[str]) -> Callable[[str], float]:
    """pandapower's ``estimate`` on a copy of the plugin's converted net; per call the plugin's
    latest measurement table; returns the time of one call with the given ``init``."""
    entry = dms_se.plugin._pandapower.entry(model, point_names)  # the plugin's cached entry
    net = copy.deepcopy(entry.network.net)
    zero_injection = PandapowerEstimator._zero_injection(entry)

    def cycle(init: str) -> float:
        net.measurement = entry.network.net.measurement.copy()
        begin = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = pp_estimation.estimate(net, algorithm="wls", init=init, tolerance=1e-6, maximum_iterations=50,
                                        zero_injection=zero_injection, fuse_buses_with_bb_switch=None)
        elapsed = time.perf_counter() - begin
        assert ok, "bare pandapower estimate did not converge"
        return elapsed

    return cycle


def bare_pgm_estimate(model, point_names: list[str], method: str) -> Callable[[str], float]:
    """power-grid-model's ``update`` with the sensor values of the plugin's latest cycle (the plugin's
    update dataset) + ``calculate_state_estimation`` (the plugin's method) on the plugin's model,
    asking for the same output components: what a bare power-grid-model user does per cycle.
    ``cycle("results")`` makes the same two calls through ``dms_pgm.prepared`` (datasets and
    calculation set up once, as the plugin calls power-grid-model), for comparison."""
    from dms_se.pgm_estimator import METHODS

    entry = dms_se.plugin._pgm.entry(model, point_names)
    pgm = entry.net.model
    outputs = {c: None for c in entry.net.input_data if c.value in ("node", "line", "link", "transformer", "three_winding_transformer")}
    outputs.update({c: None for c in entry.sensor_types})
    settings = dict(symmetric=True, calculation_method=METHODS[method], error_tolerance=1e-8, max_iterations=50, output_component_types=set(outputs))
    pusher = UpdatePusher()
    prepared = PreparedCalculation(pgm, state_estimation=True, **settings)

    def cycle(kind: str) -> float:
        update = entry.last_update
        begin = time.perf_counter()
        if kind == "results":
            pusher.push(pgm, update)
            prepared.run()
        else:
            pgm.update(update_data=update)
            pgm.calculate_state_estimation(**settings)
        return time.perf_counter() - begin

    return cycle


async def measure(size: int, estimator: str, cycles: int, budget: float, full: bool) -> dict | None:
    started = time.perf_counter()
    kernel, source = await start_bench_kernel([("se", dms_se.plugin), ("power_grid_model", dms_pgm.plugin), ("limits", dms_limits.plugin)], bench_plugin(BenchScada, _scada_model), size)
    try:
        options = {"estimator": estimator}
        source.scan()
        first = time.perf_counter()
        result = await kernel.run_study("state_estimation", options)
        first = time.perf_counter() - first
        assert result.converged, result.message
        startup = time.perf_counter() - started
        if first > SKIP_AFTER_S:
            return {"size": size, "estimator": estimator, "skipped": f"first estimation took {first:.0f} s (> {SKIP_AFTER_S:.0f} s)"}
        names = list(kernel.points.snapshot().names)
        bare = bare_estimate(kernel.model, names) if estimator == "pandapower" else bare_pgm_estimate(kernel.model, names, result.data["calculation_method"])
        times, flat, warm, suspects = [], [], [], []
        loop_start = time.perf_counter()
        for cycle in range(WARMUP + cycles):
            if len(times) >= 5 and time.perf_counter() - loop_start > budget:
                break
            source.scan()
            begin = time.perf_counter()
            result = await kernel.run_study("state_estimation", options)
            elapsed = time.perf_counter() - begin
            assert result.converged, result.message
            flat_elapsed = bare("flat")
            warm_elapsed = bare("results")
            if cycle >= WARMUP:
                times.append(elapsed)
                flat.append(flat_elapsed)
                warm.append(warm_elapsed)
                suspects.append(len(result.data["suspect"]))
        row = {
            "size": size, "estimator": estimator, "startup": startup, "cycles": len(times), "cycle": _stats(times), "bare_flat": _stats(flat)[0],
            "bare_results": _stats(warm)[0], "suspect": float(np.mean(suspects)), "message": result.message,
            "measurements": result.data["measurements"], "pseudo": result.data["pseudo"],
        }
        if full:
            pf_options = {"solver": "power-grid-model"}
            result = await kernel.run_study("power_flow", pf_options)  # prime the pgm plugin (conversion)
            assert result.converged, result.message
            full_times, se_part = [], []
            loop_start = time.perf_counter()
            for cycle in range(WARMUP + cycles):
                if len(full_times) >= 5 and time.perf_counter() - loop_start > budget / 2:
                    break
                begin = time.perf_counter()
                source.scan()
                estimate = await kernel.run_study("state_estimation", options)
                middle = time.perf_counter()
                flow = await kernel.run_study("power_flow", pf_options)
                elapsed = time.perf_counter() - begin
                assert estimate.converged and flow.converged, (estimate.message, flow.message)
                if cycle >= WARMUP:
                    full_times.append(elapsed)
                    se_part.append(middle - begin)
            row["full"] = _stats(full_times)
            row["full_cycles"] = len(full_times)
            row["full_se"] = _stats(se_part)[0]
        return row
    finally:
        await kernel.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated bus counts of radial_<N>")
    parser.add_argument("--cycles", type=int, default=20, help="timed cycles per size (after warm-up), at most")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per size for the timed loop (caps --cycles, at least 5 cycles; half of it for the full cycle)")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS), help="comma-separated: pandapower, power-grid-model")
    parser.add_argument("--full", default="10000", help="sizes that also time the full DMS cycle (comma-separated, 'none')")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    full_sizes = {int(s) for s in args.full.split(",") if s.strip().isdigit()}

    rows = []
    estimators = [e.strip() for e in args.estimators.split(",") if e.strip()]
    for size in sizes:
        for estimator in estimators:
            rows.append(asyncio.run(measure(size, estimator, args.cycles, args.budget, size in full_sizes)))
            gc.collect()

    print(f"\nCyclic state estimation: point database → estimate → results published "
          f"({datetime.date.today()}, {WARMUP} warm-up cycles, then up to {args.cycles} / {args.budget:.0f} s)\n")
    print("| buses  | estimator        | startup s | cycle median ms | p95 ms | bare call ms | ratio | target ≤ 1.5× met |")
    print("|--------|------------------|-----------|-----------------|--------|--------------|-------|-------------------|")
    for row in rows:
        if "skipped" in row:
            print(f"| {row['size']:>6,} | {row.get('estimator', ''):<16} | skipped: {row['skipped']} |")
            continue
        median, p95 = row["cycle"]
        ratio = median / row["bare_flat"]
        print(f"| {row['size']:>6,} | {row['estimator']:<16} | {row['startup']:>9.2f} | {median:>15.1f} | {p95:>6.1f} "
              f"| {row['bare_flat']:>12.1f} | {ratio:>4.2f}x | {'yes' if ratio <= 1.5 else 'NO':>17} |")
    for row in rows:
        if "full" in row:
            median, p95 = row["full"]
            print(f"| {row['size']:>6,} | full cycle¹ {row['estimator'][:5]:<5} |           | {median:>15.1f} | {p95:>6.1f} |              |       "
                  f"| {'yes' if p95 <= 100.0 else 'NO':>17} |")
    print("\nbare call: pandapower.estimation.estimate(net, 'wls', init='flat') on a copy of the plugin's net with the")
    print("plugin's measurement table of the same cycle; ratio = plugin cycle median / bare call median; target ≤ 1.5×.")
    print("¹ scan published (ingest) → state_estimation (pandapower) → power_flow (power-grid-model) → limit check;")
    print("  target ≤ 100 ms at p95 on 10,000 buses.\n")
    for row in rows:
        if "skipped" in row:
            continue
        second = ("bare estimate with init='results'" if row["estimator"] == "pandapower"
                  else "bare estimate through dms_pgm.prepared (as the plugin calls power-grid-model)")
        line = (f"- {row['size']:,} buses, {row['estimator']}: {row['cycles']} cycles; {row['measurements']} measurement rows + "
                f"{row['pseudo']} pseudo/zero-injection rows; {second} "
                f"{row['bare_results']:.2f} ms; mean suspects per cycle {row['suspect']:.2f}")
        if "full" in row:
            line += f"; full cycle ({row['full_cycles']} cycles): median of the ingest + estimation part {row['full_se']:.1f} ms"
        print(line)


if __name__ == "__main__":
    main()
