"""Entry point of the ``vvo`` plugin: the ``vvo`` study and, in closed-loop mode, its commands.

* ``dms_studies`` -> ``["vvo"]``; ``dms_run_study("vvo", ...)`` optimises the model's taps,
  capacitor banks and inverter Q for the configured objective on the model's present state
  (the live model: measured loads, switch states, taps) and returns the before/after report
  and the setpoints.
* ``dms_propose_actions``: in ``mode = "closed_loop"`` every changed control with a SCADA point
  becomes a command (taps: the step delta, as a regulating step command; capacitors: the number
  of sections; inverters: the Q setpoint in Mvar) through the command path (authorisation, interlocks, select-before-operate
  where the point has it); in ``advisory`` mode nothing is sent — the operator approves the
  setpoints (HMI, or ``kernel.execute``).

Settings ``[settings.vvo]`` (job options override them per run): ``objective`` (losses, cvr,
operations), ``v_min``/``v_max`` (pu), ``loading_max`` (%), ``solver`` (power-grid-model,
pandapower, opendss), ``cvr_exponent``, ``mode`` (advisory, closed_loop), ``taps``,
``capacitors``, ``inverters`` (which controls to use), ``max_iterations``.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np

from dms_hookspecs import Command, ControlAction, Setting, SettingsSchema, StudyResult, hookimpl

from .controls import find_controls
from .evaluate import SOLVERS, Evaluator
from .optimise import OBJECTIVES, Problem, loading_limits, optimise

STUDY = "vvo"
MODES = ("advisory", "closed_loop")
_settings: dict[str, Any] = {}
_KEYS = ("objective", "v_min", "v_max", "loading_max", "solver", "cvr_exponent", "mode", "taps", "capacitors", "inverters", "max_iterations",
         "tap_operations_per_day", "capacitor_operations_per_day")
DAY_S = 86400.0
_operations: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {control mRID: [(time, steps), ...]}
_models: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id(model) -> model, for dms_propose_actions


def operations_today(model: Any, control: str, now: float | None = None) -> int:
    """Steps commanded on ``control`` by closed-loop VVO runs in the last 24 h."""
    now = time.time() if now is None else now
    log = _operations.get(model, {}).get(control, [])
    return int(sum(steps for when, steps in log if now - when < DAY_S))


def record_operations(model: Any, control: str, steps: int, now: float | None = None) -> None:
    now = time.time() if now is None else now
    log = _operations.setdefault(model, {}).setdefault(control, [])
    log[:] = [(when, n) for when, n in log if now - when < DAY_S]
    log.append((now, steps))


@hookimpl
def dms_settings_schema():
    return SettingsSchema(
        (
            Setting("objective", str, "losses", "what to minimise", choices=OBJECTIVES),
            Setting("v_min", float, 0.95, "lower voltage limit (pu)"),
            Setting("v_max", float, 1.05, "upper voltage limit (pu)"),
            Setting("loading_max", float, 100.0, "thermal limit of lines and transformers (%)"),
            Setting("solver", str, "power-grid-model", "power-flow solver for the evaluations", choices=tuple(SOLVERS)),
            Setting("cvr_exponent", float, 1.0, "CVR load model: demand = P0 * V**cvr_exponent"),
            Setting("mode", str, "advisory", "advisory: report setpoints; closed_loop: send them as commands", choices=MODES),
            Setting("taps", bool, True, "optimise tap changers"),
            Setting("capacitors", bool, True, "optimise capacitor banks"),
            Setting("inverters", bool, True, "optimise inverter reactive power"),
            Setting("max_iterations", int, 10, "successive MILP iterations at most"),
            Setting("tap_operations_per_day", int, 30, "tap steps per tap changer in 24 h at most (closed loop)"),
            Setting("capacitor_operations_per_day", int, 4, "switching operations per capacitor bank in 24 h at most (closed loop)"),
        )
    )


@hookimpl
def dms_configure(config):
    _settings.clear()
    if config is not None:
        _settings.update(config.plugin_settings.get("vvo", {}))


@hookimpl
def dms_studies():
    return [STUDY]


@hookimpl
async def dms_run_study(study: str, model: Any, snapshot: Any, options: Mapping[str, Any]):
    if study != STUDY:
        return None
    merged = {**_settings, **{k: v for k, v in options.items() if k in _KEYS or k == "controls"}}
    if merged.get("solver", "power-grid-model") == "opendss":  # dss-python must stay on the main thread
        return run_vvo(model, merged)
    return await asyncio.to_thread(run_vvo, model, merged)


def run_vvo(model: Any, options: Mapping[str, Any]) -> StudyResult:
    """Optimise ``model``'s controls; the study result carries the before/after report."""
    started = time.time()
    if model is None:
        return StudyResult(STUDY, "vvo", False, {}, "vvo needs a network model: set `model` in the [deployment] table")
    mode = str(options.get("mode", "advisory"))
    if mode not in MODES:
        raise ValueError(f"vvo: unknown mode {mode!r} (known: {', '.join(MODES)})")
    problem = Problem(
        objective=str(options.get("objective", "losses")),
        v_min=float(options.get("v_min", 0.95)),
        v_max=float(options.get("v_max", 1.05)),
        loading_max=float(options.get("loading_max", 100.0)),
        max_iterations=int(options.get("max_iterations", 10)),
    )
    controls = find_controls(model, taps=bool(options.get("taps", True)), capacitors=bool(options.get("capacitors", True)),
                             inverters=bool(options.get("inverters", True)))
    wanted = options.get("controls")
    if wanted:
        controls = [c for c in controls if c.mrid in wanted or c.name in wanted]
    if not controls:
        return StudyResult(STUDY, "vvo", False, {"mode": mode}, "vvo: the model has no tap changers, capacitor banks or inverters to optimise")
    limits = {"tap": int(options.get("tap_operations_per_day", 30)), "capacitor": int(options.get("capacitor_operations_per_day", 4))}
    for control in controls:  # wear limits: what is left of today's operations bounds the move
        if control.kind in limits:
            left = max(limits[control.kind] - operations_today(model, control.mrid), 0)
            present = control.get()
            control.low, control.high = max(control.low, present - left), min(control.high, present + left)
    evaluate = Evaluator(model, controls, str(options.get("solver", "power-grid-model")), cvr_exponent=float(options.get("cvr_exponent", 1.0)))
    try:
        solution = optimise(evaluate, problem)
    except RuntimeError as exc:
        return StudyResult(STUDY, "vvo", False, {"mode": mode}, str(exc), started, time.time())
    setpoints = [
        {"control": c.mrid, "name": c.name, "kind": c.kind, "point": c.point, "before": before, "after": after, "text": c.describe(after)}
        for c, before, after in solution.changes
    ]

    limits = loading_limits(problem, solution.base)

    def report(m) -> dict[str, float]:
        return {"v_min_pu": m.v_min, "v_max_pu": m.v_max, "losses_mw": m.losses_mw, "demand_mw": m.demand_mw,
                "violation": m.violation(problem.v_min, problem.v_max, limits, problem.loading_weight),
                "loading_max_percent": float(max(m.loadings[np.isfinite(m.loadings)], default=0.0)) if len(m.loadings) else 0.0}

    data = {
        "mode": mode, "objective": problem.objective, "band_pu": [problem.v_min, problem.v_max],
        "before": report(solution.base), "after": report(solution.best),
        "objective_before": solution.objective_before, "objective_after": solution.objective_after,
        "setpoints": setpoints, "operations": solution.operations, "power_flows": solution.power_flows,
        "iterations": solution.iterations, "seconds": solution.seconds, "cvr_exponent": evaluate.cvr_exponent,
        "feasible": solution.violation_after <= 1e-6,
        "model_id": id(model),
    }
    _models[id(model)] = model
    return StudyResult(STUDY, "vvo", True, data, solution.message, started, time.time())


@hookimpl
def dms_propose_actions(result: StudyResult, snapshot: Any):
    if result.study != STUDY or not result.converged or result.data.get("mode") != "closed_loop":
        return None
    actions = []
    model = _models.get(result.data.get("model_id")) if result.data.get("model_id") is not None else None
    for setpoint in result.data.get("setpoints", ()):
        if not setpoint.get("point"):
            continue
        if setpoint["kind"] == "tap":  # a tap command is a step delta (regulating step, BSC)
            value = round(setpoint["after"]) - round(setpoint["before"])
        elif setpoint["kind"] == "capacitor":
            value = round(setpoint["after"])
        else:
            value = setpoint["after"]
        if setpoint["kind"] != "inverter" and value == 0:
            continue
        if model is not None and setpoint["kind"] in ("tap", "capacitor"):
            record_operations(model, setpoint["control"], abs(round(setpoint["after"]) - round(setpoint["before"])))
        command = Command(setpoint["point"], float(value), originator="controller:vvo",
                          reason=f"VVO ({result.data['objective']}): {setpoint['text']}")
        actions.append(ControlAction(command, "vvo", f"{result.message}"))
    return actions
