"""Fault location and restoration planning on real power flows, against exhaustive search."""

from __future__ import annotations

import itertools
import random

import pytest
from dms_pandapower.examples import load_example

from dms_flisr import SectionGraph, locate, plan_restoration
from dms_flisr.checks import BatchCheck, power_flow_check, sequential
from dms_flisr.examples import looped_feeders
from dms_flisr.locate import downstream_area, fault_path, short_circuit_ka
from dms_kernel.model import ACLineSegment, Breaker, Recloser, Switch


def _tripped_by(graph: SectionGraph, model, section: int) -> str:
    """The protective device nearest upstream of ``section`` (what the relay would trip)."""
    state = graph.state()
    for switch in model.of_type(Switch):
        if not isinstance(switch, Breaker | Recloser) or state[switch.mrid]:
            continue
        trial = {**state, switch.mrid: True}
        if section not in graph.energised(trial):
            return switch.mrid
    raise AssertionError("no protective device feeds the section")


def _fpi(graph: SectionGraph, state, tripped: str, faulted: int) -> dict[str, bool]:
    """Indicators that saw fault current: the closed switches on the path from the tripped device to the fault."""
    path = set(fault_path(graph, tripped, faulted, state))
    return {m: m in path for m in graph.switches}


def exhaustive_best(graph: SectionGraph, faulted: int, tripped: str, state, check) -> float:
    """The most load any radial switch state of the affected switches restores within limits."""
    below, area = downstream_area(graph, tripped, state)
    area = area | {below}
    switches = sorted({m for s in area for m in graph.adjacent[s]})
    fixed = {m: True for m in graph.adjacent[faulted]}
    free = [m for m in switches if m not in fixed]
    baseline = check({**state, **fixed}).violation
    best = 0.0
    for bits in itertools.product((False, True), repeat=len(free)):
        trial = {**state, **fixed, **dict(zip(free, bits, strict=True))}
        live = graph.energised(trial)
        closed = sum(1 for m, e in graph.switches.items() if not trial[m] and e.a in live and e.b in live)
        if closed != len(live) - len(graph.source_sections):  # a loop (paralleled feeders): not radial
            continue
        restored = graph.load_mw(live & area)
        if restored <= best:
            continue
        result = check(trial)
        if result.converged and result.violation <= baseline + 1e-6:
            best = restored
    return best


def test_sections_of_cigre_mv():
    graph = SectionGraph(load_example("cigre_mv"))
    assert len(graph.switches) == 8 and graph.source_sections == [0]
    assert graph.energised(graph.state()) == set(range(graph.count))
    assert sum(e.normal_open for e in graph.switches.values()) == 3


@pytest.mark.parametrize("with_fpi", [True, False])
def test_fault_passage_indicators_or_fault_current_find_the_section(with_fpi):
    model = looped_feeders(4, 6)
    graph = SectionGraph(model)
    rng = random.Random(5)
    lines = [line for line in model.of_type(ACLineSegment)]
    hits = 0
    trials = 12
    for _ in range(trials):
        line = rng.choice(lines)
        faulted = graph.section_of[model.nodes_of(line)[1]]
        tripped = _tripped_by(graph, model, faulted)
        state = {**graph.state(), tripped: True}
        if with_fpi:
            candidates = locate(graph, tripped, state, fpi=_fpi(graph, state, tripped, faulted))
        else:  # the relay's fault current: the short-circuit current at the faulted section (before the trip)
            section_ka = short_circuit_ka(graph)
            candidates = locate(graph, tripped, state, fault_current_ka=section_ka[faulted], section_ka=section_ka)
        hits += candidates[0].section == faulted
    assert hits == trials


@pytest.mark.parametrize("network", ["cigre_mv", "looped_3x5"])
def test_restoration_matches_exhaustive_search(network):
    model = load_example("cigre_mv") if network == "cigre_mv" else looped_feeders(3, 5, load_mw=1.2)
    graph = SectionGraph(model)
    check = power_flow_check(model)
    results = []
    for faulted in range(graph.count):
        if faulted in graph.source_sections or not graph.load_mw([faulted]) and not graph.adjacent[faulted]:
            continue
        try:
            tripped = _tripped_by(graph, model, faulted)
        except AssertionError:
            continue
        state = {**graph.state(), tripped: True}
        plan = plan_restoration(graph, faulted, tripped, state, BatchCheck(model))
        best = exhaustive_best(graph, faulted, tripped, state, check)
        assert plan.final.converged and plan.final.violation <= check(state).violation + 1e-6
        for step in plan.isolation:
            assert faulted in (graph.switches[step.switch].a, graph.switches[step.switch].b)
        results.append((graph.describe(faulted), plan.restored_mw, best))
        assert plan.restored_mw >= 0.99 * best - 1e-9, (graph.describe(faulted), plan.restored_mw, best, plan.steps)
    print("\n" + "\n".join(f"{name}: plan {mw:.2f} MW, exhaustive {best:.2f} MW" for name, mw, best in results))
    assert results


def test_load_splitting_when_one_tie_cannot_carry_everything():
    """Heavy feeders: either neighbour alone would overload its cable carrying the middle
    feeder's dead part; the plan splits it and feeds one part from each side."""
    model = looped_feeders(3, 8, load_mw=1.25)
    graph = SectionGraph(model)
    check = power_flow_check(model)
    node = next(n for n in model.node_ids() if model.objects[n].name == "F1 S1")
    faulted = graph.section_of[node]
    tripped = _tripped_by(graph, model, faulted)
    state = {**graph.state(), tripped: True}
    plan = plan_restoration(graph, faulted, tripped, state, sequential(check))
    purposes = [s.purpose for s in plan.steps]
    print("\n" + "\n".join(f"{s.action} {s.name} ({s.purpose})" for s in plan.steps), plan.restored_mw, plan.final)
    best = exhaustive_best(graph, faulted, tripped, state, check)
    assert plan.restored_mw >= 0.99 * best
    assert purposes.count("restore-tie") == 2 and "split" in purposes
    assert plan.final.v_min >= 0.9 - 1e-9


def test_batch_check_agrees_with_single_power_flows():
    model = looped_feeders(3, 5, load_mw=1.2)
    graph = SectionGraph(model)
    single, batch = power_flow_check(model), BatchCheck(model)
    rng = random.Random(2)
    states = []
    for _ in range(12):
        state = graph.state()
        for mrid in rng.sample(sorted(state), 4):
            state[mrid] = not state[mrid]
        states.append(state)
    for one, many in zip([single(s) for s in states], batch(states), strict=True):
        assert one.converged == many.converged
        if one.converged:
            assert abs(one.v_min - many.v_min) < 1e-6 and abs(one.violation - many.violation) < 1e-6
