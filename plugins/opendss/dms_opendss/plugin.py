"""Entry point of the ``opendss`` plugin: the ``power_flow`` study with ``solver = "opendss"``,
and the example model ``ieee13`` (the IEEE 13-node feeder from its CIM100 file)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dms_hookspecs import StudyResult, hookimpl

from . import IEEE13_CIM
from .solver import SOLVER_NAME, DssSolver

_solvers: dict[tuple[int, bool, float], DssSolver] = {}
_lock = threading.Lock()


def solver_for(model: Any, options: Mapping[str, Any] | None = None) -> DssSolver:
    """The cached solver of ``model`` (compiled on first use, dropped with the model)."""
    options = options or {}
    tap_control = bool(options.get("tap_control", False))
    frequency = float(options.get("frequency_hz", 60.0))
    key = (id(model), tap_control, frequency)
    with _lock:
        solver = _solvers.get(key)
        if solver is None:
            solver = DssSolver(model, frequency_hz=frequency, tap_control=tap_control)
            _solvers[key] = solver
            weakref.finalize(model, _solvers.pop, key, None)
    return solver


def forget(model: Any) -> None:
    """Drop the cached solvers of ``model`` (the next run recompiles)."""
    with _lock:
        for key in [k for k in _solvers if k[0] == id(model)]:
            del _solvers[key]


@hookimpl
def dms_studies():
    return ["power_flow"]


@hookimpl
async def dms_run_study(study, model, snapshot, options):
    # async on purpose: the kernel runs synchronous solvers in a worker thread, but the
    # OpenDSS C-API of dss-python 0.15.7 crashes the process at random (segmentation fault in
    # NewContext/solve) when called from a thread other than the main thread once other
    # native libraries (pandapower's stack) are loaded. So every OpenDSS call stays on the
    # event-loop thread; distribution-feeder solves take milliseconds.
    if study != "power_flow" or options.get("solver") != SOLVER_NAME:
        return None
    if model is None:
        return StudyResult("power_flow", SOLVER_NAME, False, {}, "no network model loaded (set [deployment] model)")
    return solver_for(model, options).solve(model)


@hookimpl
def dms_load_model(location, base_dir):
    if str(location).lower() != "ieee13":
        return None
    try:
        import dms_cim
    except ImportError:
        return None
    model = dms_cim.read_cim(Path(IEEE13_CIM))
    model.name = "ieee13"
    return model
