"""Evaluate control settings with a real power flow (any solver plugin's common result schema).

:class:`Evaluator` writes a setting into the model's objects, runs the chosen power-flow
solver (``power-grid-model``, ``pandapower`` or ``opendss``; each converts the model once and
pushes only changed values), reads the result and restores the model. :class:`Metrics` holds
what the optimisation needs: per-node voltages, branch loadings, losses and the demand under
the CVR load model.

CVR load model: the demand of a load at voltage ``V`` (pu) is ``P0 * V**n_p`` (exponential
model; ``n_p`` = ``cvr_exponent``, default 1.0, a typical CVR factor for residential feeders);
the power flow itself uses the model's load models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from dms_hookspecs import StudyResult
from dms_kernel.model import EnergyConsumer, NetworkModel

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
    voltages: np.ndarray  #: pu per node (mean of its live phases), NaN de-energised
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
            self._layout = self._build_layout(nodes, branches)
        node_ids, node_of_row, branch_order, branch_starts, load_rows, load_p = self._layout
        vm = np.asarray(nodes["vm_pu"], dtype=float)
        keep = node_of_row >= 0
        finite = np.isfinite(vm) & keep
        sums = np.bincount(node_of_row[finite], weights=vm[finite], minlength=len(node_ids))
        counts = np.bincount(node_of_row[finite], minlength=len(node_ids))
        with np.errstate(invalid="ignore", divide="ignore"):
            voltages = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)  # mean of the live phases
        loading = np.asarray(branches["loading_percent"], dtype=float)[branch_order]
        loadings = np.fmax.reduceat(loading, branch_starts) if len(branch_starts) else np.zeros(0)
        load_v = voltages[load_rows]
        demand = float(np.nansum(load_p * np.power(np.where(np.isfinite(load_v), load_v, 0.0), self.cvr_exponent)))
        return Metrics(True, voltages, loadings, float(data["losses_mw"]), demand)

    def _build_layout(self, nodes: Mapping[str, Any], branches: Mapping[str, Any]) -> tuple[Any, ...]:
        sources = {n for s in _sources(self.model) for n in self.model.nodes_of(s) if n}
        monitored = set(self._monitored) if self._monitored is not None else None
        position: dict[str, int] = {}
        node_of_row = np.full(len(nodes["node"]), -1, dtype=np.int64)
        for k, node in enumerate(nodes["node"]):
            if (monitored is None and node not in sources) or (monitored is not None and node in monitored):
                node_of_row[k] = position.setdefault(node, len(position))
        group: dict[str, int] = {}
        ids = np.array([group.setdefault(e, len(group)) for e in branches["element"]], dtype=np.int64)
        order = np.argsort(ids, kind="stable")  # the rows of one branch (its phases) together, in first-seen order
        starts = np.flatnonzero(np.diff(ids[order], prepend=-1)) if len(ids) else np.zeros(0, dtype=np.int64)
        load_rows, load_p = [], []
        for load in self.model.of_type(EnergyConsumer):
            node = (self.model.nodes_of(load) or [None])[0]
            if node in position and load.in_service:
                load_rows.append(position[node])
                load_p.append(load.p_mw)
        return (list(position), node_of_row, order, starts, np.array(load_rows, dtype=int), np.array(load_p, dtype=float))

    @property
    def node_ids(self) -> list[str]:
        return list(self._layout[0]) if self._layout else []


def _sources(model: NetworkModel) -> list[Any]:
    from dms_kernel.model import EnergySource

    return model.of_type(EnergySource)
