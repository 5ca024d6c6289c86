"""Evaluate control settings with a real power flow (any solver plugin's common result schema).

:class:`Evaluator` writes a setting into the model's objects, runs the chosen power-flow
solver (``power-grid-model``, ``pandapower`` or ``opendss``; each converts the model once and
pushes only changed values), reads the result and restores the model. :class:`Metrics` holds
what the optimisation needs: the voltage of every monitored node (of every node and live phase
on an unbalanced, multi-phase result), branch loadings, losses and the demand under the CVR
load model.

CVR load model: the demand of a load at voltage ``V`` (pu) is ``P0 * V**n_p`` (exponential
model; ``n_p`` = ``cvr_exponent``, default 1.0, a typical CVR factor for residential feeders);
the power flow itself uses the model's load models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from scipy.sparse import csr_matrix

from dms_hookspecs import StudyResult
from dms_kernel.model import EnergyConsumer, EnergyConsumerPhase, NetworkModel

from .controls import Control

__all__ = ["Evaluator", "Metrics", "SOLVERS", "power_flow"]


def _pgm(model: NetworkModel, options: Mapping[str, Any]) -> StudyResult:
    from dms_pgm.solver import run_power_flow

    return run_power_flow(model, options)


def _pandapower(model: NetworkModel, options: Mapping[str, Any]) -> StudyResult:
    from dms_pandapower.solver import solve

    return solve(model, bool(options.get("unbalanced", False)))


def _opendss(model: NetworkModel, options: Mapping[str, Any]) -> StudyResult:
    from dms_opendss.plugin import solver_for

    return solver_for(model, options).solve(model)


SOLVERS: dict[str, Callable[[NetworkModel, Mapping[str, Any]], StudyResult]] = {
    "power-grid-model": _pgm,
    "pandapower": _pandapower,
    "opendss": _opendss,
}


def power_flow(model: NetworkModel, solver: str, options: Mapping[str, Any]) -> StudyResult:
    """One power flow with the named solver plugin."""
    try:
        run = SOLVERS[solver]
    except KeyError:
        raise ValueError(f"vvo: unknown solver {solver!r} (known: {', '.join(SOLVERS)})") from None
    return run(model, options)


@attrs.frozen
class Metrics:
    """Power-flow outcome of one setting."""

    converged: bool
    voltages: np.ndarray  #: pu per monitored node, per live phase on an unbalanced result (see :attr:`Evaluator.rows`); NaN de-energised
    loadings: np.ndarray  #: percent per branch (max over phases)
    losses_mw: float
    demand_mw: float  #: sum of P0 * V**n_p over loads (CVR model)
    message: str = ""

    @property
    def v_min(self) -> float:
        return float(np.nanmin(self.voltages)) if np.isfinite(self.voltages).any() else float("nan")

    @property
    def v_max(self) -> float:
        return float(np.nanmax(self.voltages)) if np.isfinite(self.voltages).any() else float("nan")

    def violation(self, v_min: float, v_max: float, loading_limit: float | np.ndarray, loading_weight: float = 0.01) -> float:
        """Sum of the voltage-band excess (pu) and the loading excess (%) over ``loading_limit``
        (one value, or one per branch), the latter weighted by ``loading_weight`` pu per 100 %:
        the voltage band comes first (taps and reactive power barely change an overload, and
        must not trade the band for it)."""
        v = self.voltages[np.isfinite(self.voltages)]
        over = np.sum(np.clip(v - v_max, 0, None)) + np.sum(np.clip(v_min - v, 0, None))
        excess = np.nan_to_num(self.loadings - loading_limit, nan=0.0)
        return float(over + loading_weight * np.sum(np.clip(excess, 0, None)) / 100.0)


class Evaluator:
    """Runs power flows of ``model`` for settings of ``controls``; counts the calls.

    :param monitored: node mRIDs whose voltage is constrained (default: every node except
        those of the sources, whose voltage the grid upstream sets).
    """

    def __init__(self, model: NetworkModel, controls: Sequence[Control], solver: str = "power-grid-model",
                 options: Mapping[str, Any] | None = None, cvr_exponent: float = 1.0, monitored: Sequence[str] | None = None) -> None:
        self.model = model
        self.controls = list(controls)
        self.solver = solver
        self.options = {"solver": solver, **dict(options or {})}
        self.cvr_exponent = cvr_exponent
        self.calls = 0
        self._monitored = monitored
        self._layout: tuple[Any, ...] | None = None

    def current(self) -> np.ndarray:
        return np.array([c.get() for c in self.controls], dtype=float)

    def apply(self, values: np.ndarray) -> None:
        for control, value in zip(self.controls, values.tolist(), strict=True):
            control.set(round(value) if control.integer else value)

    def __call__(self, values: np.ndarray) -> Metrics:
        """Metrics of ``values`` (the model is restored afterwards)."""
        before = self.current()
        try:
            self.apply(values)
            result = power_flow(self.model, self.solver, self.options)
        finally:
            self.apply(before)
        self.calls += 1
        return self.metrics(result)

    def metrics(self, result: StudyResult) -> Metrics:
        if not result.converged:
            n = len(self._layout[0]) if self._layout else 0
            return Metrics(False, np.full(n, np.nan), np.zeros(0), float("inf"), float("inf"), result.message)
        data = result.data
        nodes, branches = data["nodes"], data["branches"]
        if self._layout is None:
            self._layout = self._build_layout(nodes, branches, bool(data.get("unbalanced", False)))
        rows, position_of_row, branch_order, branch_starts, demand_map, demand_objects = self._layout
        vm = np.asarray(nodes["vm_pu"], dtype=float)
        keep = position_of_row >= 0
        finite = np.isfinite(vm) & keep
        sums = np.bincount(position_of_row[finite], weights=vm[finite], minlength=len(rows))
        counts = np.bincount(position_of_row[finite], minlength=len(rows))
        with np.errstate(invalid="ignore", divide="ignore"):
            voltages = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        loading = np.asarray(branches["loading_percent"], dtype=float)[branch_order]
        loadings = np.fmax.reduceat(loading, branch_starts) if len(branch_starts) else np.zeros(0)
        p0 = np.fromiter((o.p_mw for o in demand_objects), dtype=float, count=len(demand_objects))
        load_v = demand_map @ np.nan_to_num(voltages, nan=0.0)  # a de-energised load demands nothing
        demand = float(np.sum(p0 * np.power(load_v, self.cvr_exponent)))
        return Metrics(True, voltages, loadings, float(data["losses_mw"]), demand)

    def _build_layout(self, nodes: Mapping[str, Any], branches: Mapping[str, Any], unbalanced: bool) -> tuple[Any, ...]:
        """Voltage rows: one per monitored node for a balanced result (its phases are equal),
        one per monitored node and live phase for an unbalanced one — every phase is a customer
        voltage and must keep the band (a mean over the phases would hide an unbalanced feeder's
        high and low phases). Branches: the rows of one branch (its phases) together."""
        sources = {n for s in _sources(self.model) for n in self.model.nodes_of(s) if n}
        monitored = set(self._monitored) if self._monitored is not None else None
        position: dict[tuple[str, int | None], int] = {}
        of_node: dict[str, list[int]] = {}
        position_of_row = np.full(len(nodes["node"]), -1, dtype=np.int64)
        phases = nodes["phase"]
        for k, node in enumerate(nodes["node"]):
            if (monitored is None and node not in sources) or (monitored is not None and node in monitored):
                key = (node, int(phases[k])) if unbalanced else (node, None)
                if key not in position:
                    position[key] = len(position)
                    of_node.setdefault(node, []).append(position[key])
                position_of_row[k] = position[key]
        group: dict[str, int] = {}
        ids = np.array([group.setdefault(e, len(group)) for e in branches["element"]], dtype=np.int64)
        order = np.argsort(ids, kind="stable")  # the rows of one branch (its phases) together, in first-seen order
        starts = np.flatnonzero(np.diff(ids[order], prepend=-1)) if len(ids) else np.zeros(0, dtype=np.int64)
        demand_map, demand_objects = self._demand_layout(position, of_node, unbalanced)
        return (list(position), position_of_row, order, starts, demand_map, demand_objects)

    def _demand_layout(self, position: Mapping[tuple[str, int | None], int], of_node: Mapping[str, Sequence[int]],
                       unbalanced: bool) -> tuple[csr_matrix, list[Any]]:
        """The CVR demand's terms: each load (or, on an unbalanced result, each of its phase
        parts) with the voltage rows it sees (its phase, both phases of a delta part, else all
        the node's phases, averaged)."""
        parts: dict[str, list[EnergyConsumerPhase]] = {}
        if unbalanced:
            for part in self.model.of_type(EnergyConsumerPhase):
                parts.setdefault(part.consumer, []).append(part)
        objects: list[Any] = []
        cols: list[list[int]] = []
        for load in self.model.of_type(EnergyConsumer):
            node = (self.model.nodes_of(load) or [None])[0]
            if node not in of_node or not load.in_service:
                continue
            delta = str(load.connection).upper().startswith("D")
            for part in parts.get(load.mrid, ()):
                numbers = [_PHASE_NUMBER[p] for p in _PHASES.findall(part.phase or "")]
                if delta and len(numbers) == 1:
                    numbers.append(numbers[0] % 3 + 1)
                seen = [position[(node, n)] for n in numbers if (node, n) in position]
                objects.append(part)
                cols.append(seen or list(of_node[node]))
            if load.mrid not in parts:
                objects.append(load)
                cols.append(list(of_node[node]))
        data = [1.0 / len(c) for c in cols for _ in c]
        indices = [i for c in cols for i in c]
        indptr = np.cumsum([0, *(len(c) for c in cols)])
        return csr_matrix((data, indices, indptr), shape=(len(cols), len(position))), objects

    @property
    def rows(self) -> list[tuple[str, int | None]]:
        """What each entry of :attr:`Metrics.voltages` is: ``(node mRID, phase 1/2/3)``, phase
        ``None`` for a balanced result."""
        return list(self._layout[0]) if self._layout else []

    @property
    def node_ids(self) -> list[str]:
        return [node for node, _ in self.rows]


_PHASES = re.compile(r"A|B|C")
_PHASE_NUMBER = {"A": 1, "B": 2, "C": 3}


def _sources(model: NetworkModel) -> list[Any]:
    from dms_kernel.model import EnergySource

    return model.of_type(EnergySource)
