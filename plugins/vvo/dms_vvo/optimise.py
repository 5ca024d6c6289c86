"""Volt-VAR optimisation by successive mixed-integer linear programming on power-flow sensitivities.

Each iteration:

1. **Sensitivities** by finite differences with the real power flow: every control is moved by
   one step (taps, capacitor sections) or by 10 % of its range (inverter Q), giving the change
   of every monitored node voltage (every node and live phase on a multi-phase result), every
   branch loading, the losses and the CVR demand.
2. **MILP** (``scipy.optimize.milp``, HiGHS): minimise the linearised objective plus a small
   cost per tap/capacitor operation, subject to the linearised voltage band and loading limit
   (with slack variables priced far above any objective, so an infeasible case returns the
   least violation instead of failing), the control ranges and a trust region (±``radius``
   steps; ±half the range for Q). Taps and sections are integer variables.
3. **Check** the MILP's setting with a full power flow: it is accepted if it reduces the
   violation, or keeps it at zero and improves the objective; otherwise the trust region is
   halved. The loop ends when the trust region collapses, the setting stops changing or
   ``max_iterations`` is reached.

A final **discrete polish** tries ±1 step on every tap and capacitor with the power flow
(coordinate descent) and keeps improvements, so the result is a local optimum of the true,
non-linear problem for the discrete controls. ``tests/test_vvo.py`` compares it with an
exhaustive search on a small case.

Objectives: ``losses`` (MW), ``cvr`` (demand under the CVR load model, i.e. the lowest
voltages inside the band), ``operations`` (fewest tap/capacitor operations that remove the
violations).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import attrs
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix, hstack, identity, vstack

from .controls import Control
from .evaluate import Evaluator, Metrics

__all__ = ["OBJECTIVES", "Problem", "Solution", "optimise", "objective_value"]

OBJECTIVES = ("losses", "cvr", "operations")
_SLACK_PRICE = 1e4  #: per pu of voltage violation (per 100 % loading excess), far above any objective change
MILP_TIME_LIMIT_S = 0.5  #: per MILP: HiGHS returns its best integer solution by then; the power-flow check and the polish decide


@attrs.frozen
class Problem:
    """What to optimise and within which limits."""

    objective: str = "losses"
    v_min: float = 0.95
    v_max: float = 1.05
    loading_max: float = 100.0
    operation_cost: float = 1e-4  #: objective units per tap/capacitor step (a tie-breaker; the main cost for ``operations``)
    max_iterations: int = 10
    radius: int = 4  #: trust region of the discrete controls (steps) at the start
    polish: bool = True
    loading_weight: float = 0.01  #: pu of voltage violation one 100 % overload counts as

    def __attrs_post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"vvo: unknown objective {self.objective!r} (known: {', '.join(OBJECTIVES)})")
        if not self.v_min < self.v_max:
            raise ValueError(f"vvo: v_min {self.v_min} must be below v_max {self.v_max}")


@attrs.frozen
class Solution:
    """The optimiser's outcome."""

    controls: Sequence[Control]
    before: np.ndarray
    after: np.ndarray
    base: Metrics
    best: Metrics
    objective_before: float
    objective_after: float
    violation_before: float
    violation_after: float
    power_flows: int
    iterations: int
    seconds: float
    message: str

    @property
    def operations(self) -> int:
        return int(sum(abs(round(a) - round(b)) for c, a, b in zip(self.controls, self.after, self.before, strict=True) if c.integer))

    @property
    def changes(self) -> list[tuple[Control, float, float]]:
        return [(c, float(b), float(a)) for c, b, a in zip(self.controls, self.before, self.after, strict=True) if abs(a - b) > 1e-9]


def objective_value(problem: Problem, metrics: Metrics, operations: float = 0.0) -> float:
    if problem.objective == "losses":
        return metrics.losses_mw + problem.operation_cost * operations
    if problem.objective == "cvr":
        return metrics.demand_mw + problem.operation_cost * operations
    return operations


def _score(problem: Problem, metrics: Metrics, values: np.ndarray, start: np.ndarray, controls: Sequence[Control],
           limits: np.ndarray | float) -> tuple[float, float]:
    if not metrics.converged:
        return math.inf, math.inf
    ops = sum(abs(v - s) for v, s, c in zip(values, start, controls, strict=True) if c.integer)
    return metrics.violation(problem.v_min, problem.v_max, limits, problem.loading_weight), objective_value(problem, metrics, ops)


def loading_limits(problem: Problem, base: Metrics) -> np.ndarray:
    """Per branch: ``loading_max``, or the present loading where it is already above (an
    overload the VVO cannot remove must not get worse, but is not chased either)."""
    return np.fmax(problem.loading_max, np.nan_to_num(base.loadings, nan=problem.loading_max))


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Is score ``a`` better than ``b`` (violation first, then objective)?"""
    if a[0] < b[0] - 1e-6:
        return True
    return abs(a[0] - b[0]) <= 1e-6 and a[1] < b[1] - 1e-9


def optimise(evaluate: Evaluator, problem: Problem) -> Solution:
    """Optimise the setting of ``evaluate.controls`` for ``problem`` (see the module docstring)."""
    started = time.perf_counter()
    controls = evaluate.controls
    start = evaluate.current()
    lows = np.array([c.low for c in controls], dtype=float)
    highs = np.array([c.high for c in controls], dtype=float)
    start = np.clip(start, lows, highs)
    integer = np.array([c.integer for c in controls], dtype=bool)
    base = evaluate(start)
    if not base.converged:
        raise RuntimeError(f"vvo: the power flow of the present setting does not converge: {base.message}")
    x, metrics = start.copy(), base
    limits = loading_limits(problem, base)
    score = _score(problem, metrics, x, start, controls, limits)
    radius = float(problem.radius)
    iterations = 0
    notes: list[str] = []
    if problem.objective == "operations" and score[0] <= 1e-6:
        radius = 0.0  # nothing to correct: the fewest operations are none
    while controls and iterations < problem.max_iterations and radius >= 1.0 - 1e-9:
        iterations += 1
        step, sens = _sensitivities(evaluate, problem, x, metrics, lows, highs, integer)
        candidate = _milp(problem, x, metrics, sens, lows, highs, integer, radius, start, limits)
        if candidate is None or np.allclose(candidate, x):
            break
        trial = evaluate(candidate)
        trial_score = _score(problem, trial, candidate, start, controls, limits)
        if _better(trial_score, score):
            x, metrics, score = candidate, trial, trial_score
        else:
            radius /= 2.0
    if problem.polish and radius > 0.0:
        x, metrics, score = _polish(evaluate, problem, x, metrics, score, lows, highs, integer, start, limits)
    violation_before, objective_before = _score(problem, base, start, start, controls, limits)
    voltage_excess = metrics.violation(problem.v_min, problem.v_max, math.inf, 0.0)
    overload = metrics.loadings[np.isfinite(metrics.loadings)]
    if voltage_excess > 1e-6:
        notes.append(f"voltage band not reachable: {voltage_excess:.4f} pu of excess remain with the best setting")
    if len(overload) and overload.max() > problem.loading_max:
        notes.append(f"overloads remain (max loading {overload.max():.0f} %, not made worse): taps and reactive power cannot remove them")
    message = (
        f"{problem.objective}: {objective_before:.6g} -> {score[1]:.6g}, violation {violation_before:.4g} -> {score[0]:.4g}, "
        f"V {metrics.v_min:.4f}..{metrics.v_max:.4f} pu, {evaluate.calls} power flows"
        + ("; " + "; ".join(notes) if notes else "")
    )
    return Solution(controls, start, x, base, metrics, objective_before, score[1], violation_before, score[0],
                    evaluate.calls, iterations, time.perf_counter() - started, message)


def _sensitivities(evaluate: Evaluator, problem: Problem, x: np.ndarray, metrics: Metrics, lows: np.ndarray, highs: np.ndarray,
                   integer: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    n = len(x)
    steps = np.where(integer, 1.0, 0.1 * (highs - lows))
    dv = np.zeros((len(metrics.voltages), n))
    dl = np.zeros((len(metrics.loadings), n))
    dobj = np.zeros(n)
    v0 = np.nan_to_num(metrics.voltages)
    l0 = np.nan_to_num(metrics.loadings)
    for i in range(n):
        delta = steps[i] if x[i] + steps[i] <= highs[i] + 1e-9 else -steps[i]
        if abs(delta) < 1e-12:
            continue
        moved = x.copy()
        moved[i] += delta
        m = evaluate(moved)
        if not m.converged:
            continue
        dv[:, i] = (np.nan_to_num(m.voltages) - v0) / delta
        if len(m.loadings) == len(l0):
            dl[:, i] = (np.nan_to_num(m.loadings) - l0) / delta
        dobj[i] = (objective_value(problem, m) - objective_value(problem, metrics)) / delta
    return steps, {"v": dv, "loading": dl, "objective": dobj}


def _milp(problem: Problem, x: np.ndarray, metrics: Metrics, sens: dict[str, np.ndarray], lows: np.ndarray, highs: np.ndarray,
          integer: np.ndarray, radius: float, start: np.ndarray, limits: np.ndarray) -> np.ndarray | None:
    """Variables: Δx (n), operations u ≥ |x + Δx - start| for integer controls (n), slacks for the
    voltage band below/above (m each) and loading (k)."""
    n = len(x)
    span = highs - lows
    trust = np.where(integer, np.floor(radius), np.maximum(span * min(radius, 4.0) / 8.0, 1e-9))
    lo = np.maximum(lows - x, -trust)
    hi = np.minimum(highs - x, trust)
    reach = np.maximum(np.abs(lo), np.abs(hi))
    # only rows the trust region can bring to their limit (twice the linear reach, for safety)
    v0 = metrics.voltages
    dv_max = 2.0 * (np.abs(sens["v"]) @ reach) + 1e-6
    live = np.isfinite(v0) & ((v0 - dv_max <= problem.v_min) | (v0 + dv_max >= problem.v_max))
    S = sens["v"][live]
    v = v0[live]
    m = len(v)
    L = sens["loading"]
    l0 = metrics.loadings
    limit_all = np.broadcast_to(limits, l0.shape)
    dl_max = 2.0 * (np.abs(L) @ reach) + 1e-6
    loaded = np.isfinite(l0) & (np.abs(L).sum(axis=1) > 0) & (l0 + dl_max >= limit_all)
    SL, lv, limit = L[loaded], l0[loaded], limit_all[loaded]
    k = len(lv)
    # objective: gradient·Δx + op cost·u + price·slacks
    op_weight = 1.0 if problem.objective == "operations" else problem.operation_cost
    c = np.concatenate([
        sens["objective"] if problem.objective != "operations" else np.zeros(n),
        np.where(integer, op_weight, 0.0),
        np.full(2 * m, _SLACK_PRICE),
        np.full(k, _SLACK_PRICE * problem.loading_weight / 100.0),
    ])
    nvar = 2 * n + 2 * m + k
    rows = []
    lb, ub = [], []
    Sm = csr_matrix(S)
    Z = lambda r, cc: csr_matrix((r, cc))  # noqa: E731
    if m:
        # v + SΔx + s_low >= v_min ; v + SΔx - s_high <= v_max
        rows.append(hstack([Sm, Z(m, n), identity(m, format="csr"), Z(m, m), Z(m, k)]))
        lb.append(problem.v_min - v); ub.append(np.full(m, np.inf))
        rows.append(hstack([Sm, Z(m, n), Z(m, m), -identity(m, format="csr"), Z(m, k)]))
        lb.append(np.full(m, -np.inf)); ub.append(problem.v_max - v)
    if k:
        rows.append(hstack([csr_matrix(SL), Z(k, n), Z(k, 2 * m), -identity(k, format="csr")]))
        lb.append(np.full(k, -np.inf)); ub.append(limit - lv)
    # operations: u >= ±(x + Δx - start) for integer controls
    offset = x - start
    I = identity(n, format="csr")
    rows.append(hstack([I, I, Z(n, 2 * m + k)]))  # Δx + u >= -offset
    lb.append(-offset); ub.append(np.full(n, np.inf))
    rows.append(hstack([-I, I, Z(n, 2 * m + k)]))  # -Δx + u >= offset
    lb.append(offset); ub.append(np.full(n, np.inf))
    A = vstack(rows).tocsr()
    bounds = Bounds(np.concatenate([lo, np.zeros(n + 2 * m + k)]), np.concatenate([hi, np.full(n + 2 * m + k, np.inf)]))
    integrality = np.concatenate([integer.astype(int), np.zeros(n + 2 * m + k, dtype=int)])
    result = milp(c, constraints=LinearConstraint(A, np.concatenate(lb), np.concatenate(ub)), integrality=integrality,
                  bounds=bounds, options={"time_limit": MILP_TIME_LIMIT_S, "mip_rel_gap": 1e-4})
    if result.x is None:
        return None
    delta = result.x[:n]
    delta = np.where(integer, np.round(delta), delta)
    return np.clip(x + delta, lows, highs)


def _polish(evaluate: Evaluator, problem: Problem, x: np.ndarray, metrics: Metrics, score: tuple[float, float], lows: np.ndarray,
            highs: np.ndarray, integer: np.ndarray, start: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, Metrics, tuple[float, float]]:
    """Coordinate descent over ±1 step of each discrete control, with the power flow."""
    improved = True
    while improved:
        improved = False
        for i in np.flatnonzero(integer).tolist():
            for delta in (-1.0, 1.0):
                value = x[i] + delta
                if value < lows[i] - 1e-9 or value > highs[i] + 1e-9:
                    continue
                trial_x = x.copy()
                trial_x[i] = value
                trial = evaluate(trial_x)
                trial_score = _score(problem, trial, trial_x, start, evaluate.controls, limits)
                if _better(trial_score, score):
                    x, metrics, score, improved = trial_x, trial, trial_score, True
                    break
    return x, metrics, score
