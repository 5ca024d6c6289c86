"""Cyclic power flow: model update from the point database + solve + limit check, per solver plugin.

Runs a real kernel per network size and solver plugin (pandapower, power-grid-model, limits,
and a bench plugin). The bench plugin loads ``radial_<N>`` (``dms_pandapower.examples``) with the
usual SCADA measurements (``add_scada_measurements``: source voltage, feeder breaker positions,
transformer taps and P/Q) and a bench source that declares those points. Every cycle the source
publishes new values — the transformer P/Q scaled by a random factor (so the pseudo-loads of all
unmeasured loads change every cycle) and a slightly varying source voltage — and the timed step is
``await kernel.run_study("power_flow", {"solver": ...})``: snapshot → live model update →
solver update + solve (worker thread) → result event → limit check.

In the same run, the bare library calls on the same network are timed:

* pandapower: ``pp.runpp(net, init="results", numba=True, ...)`` on a copy of the plugin's
  converted net, same options as the plugin (NR, ``trafo_model="pi"``, tolerance 1e-8 MVA), loads
  scaled per cycle (warm start, no recycle);
* power-grid-model: a ``PowerGridModel`` built once from the plugin's converted input, per cycle
  ``update`` (load P/Q, source voltage) + ``calculate_power_flow`` (Newton-Raphson, symmetric,
  tolerance 1e-8, the same output request as the plugin: whole rows of nodes and branches below
  ``dms_pgm.solver.COLUMNAR_OUTPUT_MIN_NODES`` nodes, the needed columns above).

    .venv/bin/python bench/powerflow.py [--sizes 100,1000,10000] [--cycles 50]

"startup" = kernel prepare/start (model load, SCADA measurements, point binding) + the first
study (conversion, numba compilation, first solve). Targets (issue 4): the whole cycle ≤ 2× the
fastest bare call for that size, and ≤ 25 ms for 10,000 buses with the fastest plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandapower as pp
from power_grid_model import CalculationMethod, ComponentType, DatasetType, PowerGridModel, initialize_array

import dms_limits.plugin
import dms_pandapower.plugin
import dms_pgm.plugin
import dms_pgm.solver
from benchkit import BenchSource, bench_plugin, start_bench_kernel
from dms_kernel.model import EnergyConsumer, EnergySource, PowerTransformer
from dms_kernel.model.scada import add_scada_measurements, measurement_points
from dms_pandapower.examples import load_example
from dms_pgm.prepared import PreparedCalculation, UpdatePusher
from dms_pgm.solver import network_for

SOLVERS = ("pandapower", "power-grid-model")
WARMUP = 3
C = ComponentType


class BenchScada(BenchSource):
    """Declares the model's measurement points; publishes one scan per :meth:`scan` call."""

    async def run(self, context) -> None:
        self.context = context
        specs = self.points()
        self.numbers = np.asarray(context.point_numbers([str(s.id) for s in specs]), dtype=np.int64)
        self.base = np.asarray([_BASE[str(s.id)] for s in specs])
        self.scalable = np.asarray([str(s.id).endswith(("/P", "/Q")) for s in specs])
        self.is_voltage = np.asarray([str(s.id).endswith("/U") for s in specs])
        await asyncio.Event().wait()  # published by scan() from the bench loop

    def scan(self) -> None:
        """Publish every point once: P/Q scaled by a random 0.8–1.2 factor (±3 % per transformer), U ±0.5 %."""
        values = self.base.copy()
        common = self.rng.uniform(0.8, 1.2)  # the whole system's load level moves, each transformer a bit on its own
        values[self.scalable] *= common * self.rng.uniform(0.97, 1.03, int(self.scalable.sum()))
        values[self.is_voltage] *= self.rng.uniform(0.995, 1.005, int(self.is_voltage.sum()))
        self.publish(values)


_BASE: dict[str, float] = {}  # point name -> nominal value (MW, Mvar, kV, position)


def _scada_model(name: str):
    """The example with standard SCADA measurements, and the nominal value of every point."""
    model = load_example(name)
    add_scada_measurements(model)
    # nominal transformer P/Q: the loads behind each transformer (radial_N: one MV busbar each)
    loads = model.of_type(EnergyConsumer)
    transformers = model.of_type(PowerTransformer)
    share = 1.0 / max(len(transformers), 1)
    total_p = sum(load.p_mw for load in loads)
    total_q = sum(load.q_mvar for load in loads)
    for transformer in transformers:
        label = (transformer.name or transformer.mrid).replace(" ", "_")
        _BASE[f"{label}/P"] = total_p * share
        _BASE[f"{label}/Q"] = total_q * share
        changers = [model.tap_changer(end) for end in model.ends(transformer)]
        _BASE[f"{label}/Tap"] = next((c.step for c in changers if c is not None), 0.0)
    for source in model.of_type(EnergySource):
        label = (source.name or source.mrid).replace(" ", "_")
        _BASE[f"{label}/U"] = source.voltage_kv or source.nominal_kv
    for spec in measurement_points(model):
        if str(spec.id).endswith("/Pos"):
            _BASE[str(spec.id)] = 2.0  # IEC 61850 double point: closed
    return model


def _stats(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] * 1e3


async def measure(size: int, solver: str, cycles: int) -> tuple[float, list[float], list[float], list[float]]:
    """(startup s, plugin cycle times s, bare call times s, prepared bare call times s) for one solver plugin.

    Plugin cycles and bare calls alternate, so both see the same machine load.
    """
    started = time.perf_counter()
    kernel, source = await start_bench_kernel([("pandapower", dms_pandapower.plugin), ("power_grid_model", dms_pgm.plugin), ("limits", dms_limits.plugin)], bench_plugin(BenchScada, _scada_model), size)
    try:
        options = {"solver": solver}
        source.scan()
        result = await kernel.run_study("power_flow", options)
        assert result.converged, result.message
        startup = time.perf_counter() - started
        bare = BARE[solver](kernel.model)
        prepared = PREPARED[solver](kernel.model) if solver in PREPARED else None
        times, bare_times, prepared_times = [], [], []
        for cycle in range(WARMUP + cycles):
            source.scan()
            begin = time.perf_counter()
            result = await kernel.run_study("power_flow", options)
            elapsed = time.perf_counter() - begin
            assert result.converged, result.message
            bare_elapsed = bare()
            prepared_elapsed = prepared() if prepared is not None else math.nan
            if cycle >= WARMUP:
                times.append(elapsed)
                bare_times.append(bare_elapsed)
                prepared_times.append(prepared_elapsed)
    finally:
        await kernel.stop()
    return startup, times, bare_times, prepared_times


def bare_pandapower(model) -> Callable[[], float]:
    """Warm-started runpp on a copy of the pandapower plugin's converted net; returns one timed cycle."""
    net = copy.deepcopy(dms_pandapower.plugin._solver.network(model).net)
    rng = np.random.default_rng(3)
    p0, q0 = net.load.p_mw.to_numpy().copy(), net.load.q_mvar.to_numpy().copy()
    vm0 = float(net.ext_grid.vm_pu.iloc[0])
    options = dict(algorithm="nr", numba=True, calculate_voltage_angles=True, tolerance_mva=1e-8, trafo_model="pi", max_iteration=30)
    pp.runpp(net, init="auto", **options)

    def cycle() -> float:
        scale = rng.uniform(0.8, 1.2)
        net.load["p_mw"] = p0 * scale
        net.load["q_mvar"] = q0 * scale
        net.ext_grid["vm_pu"] = vm0 * rng.uniform(0.995, 1.005)
        begin = time.perf_counter()
        pp.runpp(net, init="results", **options)
        return time.perf_counter() - begin

    return cycle


def _pgm_cycle(model, prepared: bool) -> Callable[[], float]:
    """A PowerGridModel built once from the plugin's converted input; per cycle an update of load
    P/Q and source voltage + Newton-Raphson; returns one timed cycle. ``prepared``: through
    ``dms_pgm.prepared`` (update dataset and calculation set up once, as the plugin calls
    power-grid-model) instead of the public ``update`` + ``calculate_power_flow``."""
    converted = network_for(model, False)
    input_data = {component: array.copy() for component, array in converted.input_data.items()}
    pgm = PowerGridModel(input_data, system_frequency=converted.frequency)
    loads, sources = input_data[C.sym_load], input_data[C.source]
    load_update = initialize_array(DatasetType.update, C.sym_load, len(loads))
    load_update["id"] = loads["id"]
    source_update = initialize_array(DatasetType.update, C.source, len(sources))
    source_update["id"] = sources["id"]
    p0, q0, u0 = loads["p_specified"].copy(), loads["q_specified"].copy(), sources["u_ref"].copy()
    # the plugin's output request: whole rows of these components on small networks, only the
    # needed columns from COLUMNAR_OUTPUT_MIN_NODES nodes on (whichever is faster at that size)
    outputs = dms_pgm.solver.output_request(
        {c: attributes for c, attributes in dms_pgm.solver._OUTPUTS.items() if c in input_data}, len(converted.node_mrids)
    )
    settings = dict(calculation_method=CalculationMethod.newton_raphson, error_tolerance=1e-8, max_iterations=20, output_component_types=outputs)
    if prepared:
        pusher = UpdatePusher()
        calculation = PreparedCalculation(pgm, state_estimation=False, symmetric=True, **settings)
        update, solve = pusher.push, lambda: calculation.run()
    else:
        update, solve = (lambda model_, data: pgm.update(update_data=data)), (lambda: pgm.calculate_power_flow(symmetric=True, **settings))
    rng = np.random.default_rng(3)

    def cycle() -> float:
        scale = rng.uniform(0.8, 1.2)
        u_ref = u0 * rng.uniform(0.995, 1.005)
        begin = time.perf_counter()
        load_update["p_specified"] = p0 * scale
        load_update["q_specified"] = q0 * scale
        source_update["u_ref"] = u_ref
        update(pgm, {C.sym_load: load_update, C.source: source_update})
        solve()
        return time.perf_counter() - begin

    return cycle


def bare_pgm(model) -> Callable[[], float]:
    """PowerGridModel built once; per cycle public ``update`` (loads, source voltage) + ``calculate_power_flow``."""
    return _pgm_cycle(model, prepared=False)


def prepared_pgm(model) -> Callable[[], float]:
    """The cycle of :func:`bare_pgm` through ``dms_pgm.prepared``, as the plugin calls power-grid-model."""
    return _pgm_cycle(model, prepared=True)


BARE: dict[str, Callable] = {"pandapower": bare_pandapower, "power-grid-model": bare_pgm}
PREPARED: dict[str, Callable] = {"power-grid-model": prepared_pgm}


async def run_size(size: int, cycles: int) -> list[tuple]:
    rows = []
    for solver in SOLVERS:
        startup, times, bare, prepared = await measure(size, solver, cycles)
        rows.append((size, solver, startup, *_stats(times), _stats(bare)[0], _stats(prepared)[0] if solver in PREPARED else math.nan))
        gc.collect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated bus counts of radial_<N>")
    parser.add_argument("--cycles", type=int, default=50, help="timed cycles per solver and size (after warm-up)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    rows = []
    for size in sizes:
        rows.extend(asyncio.run(run_size(size, args.cycles)))

    print(f"\nCyclic power flow: point database → live model → solve → limit check ({args.cycles} cycles after {WARMUP} warm-up)\n")
    print("| buses  | solver           | startup s | cycle median ms | p95 ms | bare call ms | ratio | target met | prepared bare ms | cycle / prepared |")
    print("|--------|------------------|-----------|-----------------|--------|--------------|-------|------------|------------------|------------------|")
    for size in sizes:
        own = [r for r in rows if r[0] == size]
        fastest_bare = min(r[5] for r in own)
        fastest_plugin = min(r[3] for r in own)
        for _, solver, startup, median, p95, bare, prepared in own:
            ratio = median / fastest_bare
            met = ratio <= 2.0
            if size >= 10_000 and median == fastest_plugin:
                met = met and median <= 25.0
            print(
                f"| {size:>6,} | {solver:<16} | {startup:>9.2f} | {median:>15.2f} | {p95:>6.2f} | {bare:>12.2f} "
                f"| {ratio:>4.1f}x | {'yes' if met else 'NO':>10} | "
                + (f"{prepared:>16.2f} | {median / prepared:>15.1f}x |" if prepared == prepared else f"{'-':>16} | {'-':>16} |")
            )
    print("\nbare call: the solver library alone on the same network (see the module docstring);")
    print("ratio: plugin cycle median / the fastest bare call for that size; target ≤ 2x (and ≤ 25 ms at 10,000 buses).")
    print("prepared bare: the same bare power-grid-model cycle through dms_pgm.prepared (datasets and calculation set up once,")
    print("as the plugin calls power-grid-model), not the library's public call; shown for how much the rest of the cycle costs.")


if __name__ == "__main__":
    main()
