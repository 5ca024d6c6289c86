"""FLISR plan time: fault location + isolation + restoration plan with power-flow checks.

Networks: ``dms_flisr.examples.looped_feeders`` — feeders of equal sections separated by
load-break switches, two normally-open ties between neighbouring feeders — with about 100 and
1,000 switches. For every size, ``--faults`` random faulted sections (seeded): the feeder
breaker trips, fault passage indicators on the path pick up, and the timed step is
``dms_flisr.plugin.run_flisr(model, snapshot, options)``: locate → isolate → restoration
candidates, each checked by a power-grid-model power flow → plan and switching order. The
section graph and the power-grid-model conversion are built once per network (startup), as in
a running DMS.

    .venv/bin/python bench/flisr.py [--faults 20]

Target (issue 10): ≤ 1 s per plan for 1,000 switches.
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import time

import dms_flisr.plugin as flisr
from dms_flisr import SectionGraph
from dms_flisr.examples import add_fault_indicators, looped_feeders
from dms_flisr.locate import fault_path
from dms_kernel.model import Breaker, Switch

SIZES = {"~100 switches": (8, 11), "~1,000 switches": (40, 23)}


class Snapshot:
    """The indicator values of one fault (what the point database would hold)."""

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def get(self, point: str):
        class M:
            value = self.values.get(point, 0.0)

        return M


def run(label: str, feeders: int, sections: int, faults: int, seed: int = 3) -> dict:
    began = time.perf_counter()
    model = looped_feeders(feeders, sections)
    add_fault_indicators(model)
    graph = flisr.graph_of(model)
    flisr.run_flisr(model, None, {"tripped": next(s.mrid for s in model.of_type(Breaker))})  # warm: pgm conversion
    startup = time.perf_counter() - began
    rng = random.Random(seed)
    times, restored, flows = [], [], []
    fpi_point = {m.power_system_resource: m.point_name for m in _measurements(model) if m.measurement_type == "FaultPassageIndicator"}
    sections_with_load = [s for s in range(graph.count) if graph.consumers[s] and s not in graph.source_sections]
    for _ in range(faults):
        faulted = rng.choice(sections_with_load)
        breaker = _breaker_of(graph, model, faulted)
        model.objects[breaker].open = True
        flags = [breaker, *fault_path(graph, breaker, faulted, graph.state())]
        snapshot = Snapshot({fpi_point[m]: 1.0 for m in flags if m in fpi_point})
        start = time.perf_counter()
        result = flisr.run_flisr(model, snapshot, {"tripped": breaker})
        times.append(time.perf_counter() - start)
        model.objects[breaker].open = False
        assert result.converged, result.message
        assert result.data["faulted"] == graph.describe(faulted), (result.data["faulted"], graph.describe(faulted))
        restored.append(result.data["restored_mw"] / (result.data["restored_mw"] + result.data["unrestored_mw"]))
        flows.append(result.data["power_flows"])
    ordered = sorted(times)
    return {"label": label, "switches": len(model.of_type(Switch)), "buses": len(model.node_ids()), "startup": startup,
            "median": statistics.median(times), "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            "max": max(times), "restored": statistics.mean(restored), "flows": statistics.mean(flows), "faults": faults}


def _measurements(model):
    from dms_kernel.model import Measurement

    return model.of_type(Measurement)


def _breaker_of(graph: SectionGraph, model, section: int) -> str:
    state = graph.state()
    for switch in model.of_type(Breaker):
        if section not in graph.energised({**state, switch.mrid: True}):
            return switch.mrid
    raise AssertionError("no breaker feeds the section")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=20)
    args = parser.parse_args()
    rows = [run(label, f, s, args.faults) for label, (f, s) in SIZES.items()]
    print(f"\nFLISR plan time ({datetime.date.today()}; {args.faults} random faults per network, power-grid-model checks)\n")
    print("| network | switches | buses | startup s | plan median ms | p95 ms | max ms | power flows per plan | load restored | ≤ 1 s |")
    print("|---------|---------:|------:|----------:|---------------:|-------:|-------:|---------------------:|--------------:|-------|")
    for r in rows:
        print(f"| {r['label']} | {r['switches']} | {r['buses']} | {r['startup']:.2f} | {1e3 * r['median']:.1f} | {1e3 * r['p95']:.1f} "
              f"| {1e3 * r['max']:.1f} | {r['flows']:.1f} | {100 * r['restored']:.1f} % | {'yes' if r['max'] <= 1.0 else 'NO'} |")
    print("\nload restored = restored / (restored + lost) of the tripped feeder, mean over the faults; the faulted section always stays off.")


if __name__ == "__main__":
    main()
