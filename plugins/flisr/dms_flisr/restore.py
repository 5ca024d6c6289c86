"""Isolation and restoration plan, every candidate checked by a power flow.

1. **Isolate**: open every closed switch around the faulted section.
2. **Restore upstream**: re-close the tripped device unless it borders the faulted section.
3. **Restore downstream**: the sections still dead form components (connected by closed
   switches). For each component the candidates are: close one normally-open tie to a live
   neighbour; or split it by opening one or two of its closed switches and feed each part
   through its own tie (partial restoration, load splitting; one cut only in parts with more than
   ten internal switches); or leave it dead. Candidates are ranked by restored load, then by
   fewer operations, and checked in batches (32, 64, … at most 256 per part); the first whose
   power flow adds no voltage-band or loading violation (against the state after step 2) is
   taken. A radial structure is kept: one tie per part.
4. The components' choices are checked together with one more power flow; if that adds a
   violation, the smallest restoration is dropped until it does not.

``check`` runs power flows for a list of switch states and returns their :class:`Check` s
(``dms_flisr.checks.BatchCheck``: one power-grid-model batch calculation).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import attrs

from .sections import SectionGraph

__all__ = ["Check", "Plan", "Step", "plan_restoration"]


@attrs.frozen
class Check:
    converged: bool
    violation: float  #: voltage-band excess (pu) + loading excess (/100 %), energised part
    v_min: float
    v_max: float
    loading_max: float


@attrs.frozen
class Step:
    switch: str
    name: str
    action: str  #: "open" | "close"
    purpose: str  #: isolate | restore-upstream | split | restore-tie


@attrs.frozen
class Plan:
    faulted: int
    tripped: str
    steps: tuple[Step, ...]
    restored_mw: float
    unrestored_mw: float
    restored_customers: int
    unrestored_customers: int
    final: Check
    power_flows: int
    notes: tuple[str, ...] = ()

    @property
    def isolation(self) -> list[Step]:
        return [s for s in self.steps if s.purpose == "isolate"]


def plan_restoration(graph: SectionGraph, faulted: int, tripped: str, state: Mapping[str, bool],
                     check: Callable[[list[Mapping[str, bool]]], list[Check]], max_splits: int = 2) -> Plan:
    """The switching plan for a fault in ``faulted`` that tripped ``tripped`` (``state``: after the trip)."""
    calls = 0

    def run_many(states: list[Mapping[str, bool]]) -> list[Check]:
        nonlocal calls
        calls += len(states)
        return check(states)

    def run(s: Mapping[str, bool]) -> Check:
        return run_many([s])[0]

    state = dict(state)
    area = graph.energised({**state, tripped: False}) - graph.energised(state)  # what the tripped device fed
    steps: list[Step] = []
    for mrid in graph.adjacent[faulted]:
        if not state[mrid] and mrid != tripped:
            state[mrid] = True
            steps.append(Step(mrid, graph.switches[mrid].name, "open", "isolate"))
    edge = graph.switches[tripped]
    if faulted not in (edge.a, edge.b):
        state[tripped] = False
        steps.append(Step(tripped, edge.name, "close", "restore-upstream"))
    base_live = graph.energised(state)
    baseline = run(state)
    notes: list[str] = []
    dead = area - base_live - {faulted}
    components = []
    remaining = set(dead)
    while remaining:
        start = min(remaining)
        comp = graph.component(start, state, within=dead)
        components.append(comp)
        remaining -= comp
    chosen: list[tuple[float, list[Step], set[int]]] = []
    for comp in components:
        best = _best_for_component(graph, comp, faulted, state, base_live, baseline, run_many, max_splits)
        if best is not None:
            chosen.append(best)
    # all components together
    chosen.sort(key=lambda c: -c[0])
    while chosen:
        combined = dict(state)
        for _, comp_steps, _ in chosen:
            for step in comp_steps:
                combined[step.switch] = step.action == "open"
        final = run(combined)
        if final.converged and final.violation <= baseline.violation + 1e-6:
            break
        dropped = chosen.pop()
        notes.append(f"restoration of {graph.describe(next(iter(dropped[2])))} dropped: together with the others it violates limits")
    else:
        combined, final = state, baseline
    for _, comp_steps, _ in chosen:
        steps.extend(comp_steps)
    live = graph.energised(combined)
    lost = area - live - {faulted}
    restored = area & live
    if lost:
        notes.append(f"not restored: {graph.load_mw(lost):.3f} MW ({graph.customers(lost)} customers) — no tie can carry it within limits")
    return Plan(faulted, tripped, tuple(steps), graph.load_mw(restored), graph.load_mw(lost) + graph.load_mw([faulted]),
                graph.customers(restored), graph.customers(lost | {faulted}), final, calls, tuple(notes))


def _best_for_component(graph: SectionGraph, comp: set[int], faulted: int, state: Mapping[str, bool], live: set[int],
                        baseline: Check, run_many: Callable[[list[Mapping[str, bool]]], list[Check]], max_splits: int,
                        chunk: int = 32, max_options: int = 256):
    """(restored MW, steps, sections) of the best feasible option for one dead component, or None."""
    ties = {}
    internal = []
    for section in comp:
        for mrid in graph.adjacent[section]:
            other = graph.other_side(mrid, section)
            if other in comp:
                if not state[mrid] and mrid not in internal:
                    internal.append(mrid)
            elif state[mrid] and other in live and other != faulted:
                ties.setdefault(mrid, section)
    if not ties:
        return None
    options: list[tuple[float, int, dict[str, bool], list[Step], set[int]]] = []
    if len(internal) > 10:  # a long dead part: pairs of cuts grow quadratically; one cut per part
        max_splits = min(max_splits, 1)
    for n_split in range(0, max_splits + 1):
        for cut in itertools.combinations(sorted(internal), n_split):
            cut_state = {**state, **{m: True for m in cut}}
            parts: list[set[int]] = []
            left = set(comp)
            while left:
                part = graph.component(min(left), cut_state, within=comp)
                parts.append(part)
                left -= part
            choices = []
            for part in parts:
                part_ties = [m for m, s in ties.items() if s in part]
                choices.append([None, *part_ties])
            for assignment in itertools.product(*choices):
                if all(t is None for t in assignment):
                    continue
                fed = set().union(*(p for p, t in zip(parts, assignment, strict=True) if t is not None))
                mw = graph.load_mw(fed)
                trial = dict(cut_state)
                steps = [Step(m, graph.switches[m].name, "open", "split") for m in cut]
                for tie in assignment:
                    if tie is not None:
                        trial[tie] = False
                        steps.append(Step(tie, graph.switches[tie].name, "close", "restore-tie"))
                options.append((mw, len(steps), trial, steps, fed))
    options.sort(key=lambda o: (-o[0], o[1]))
    # the most restoring options first, in batches: the first feasible one in that order wins
    for begin in range(0, min(len(options), max_options), chunk):
        batch = options[begin:min(begin + chunk, max_options)]
        for (mw, _, _, steps, fed), result in zip(batch, run_many([o[2] for o in batch]), strict=True):
            if result.converged and result.violation <= baseline.violation + 1e-6:
                return mw, steps, fed
        chunk *= 2
    return None
