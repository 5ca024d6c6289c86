"""Entry point of the ``pandapower`` plugin: the default power-flow solver and example networks.

* ``dms_studies`` -> ``["power_flow"]``.
* ``dms_run_study`` (``trylast``: the default solver) handles ``power_flow`` when the job's
  ``solver`` option is ``"pandapower"`` or not given; ``unbalanced = true`` runs ``runpp_3ph``;
  ``source_impedance = true`` puts the EnergySource's Thevenin impedance behind its node (as the
  power-grid-model plugin's option); further options ``tolerance_mva``, ``max_iteration``,
  ``trafo_model``, ``recycle``.
* ``dms_load_model`` loads the example networks by name (``cigre_mv``, ``mv_oberrhein``,
  ``ieee_european_lv``, ``radial_<N>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dms_hookspecs import hookimpl

from .examples import is_example, load_example
from .solver import SOLVER, PandapowerSolver

_solver = PandapowerSolver()
_OPTIONS = ("tolerance_mva", "max_iteration", "trafo_model", "recycle", "source_impedance")


@hookimpl
def dms_studies():
    return ["power_flow"]


@hookimpl(trylast=True)
def dms_run_study(study: str, model: Any, snapshot: Any, options: Mapping[str, Any]):
    if study != "power_flow" or options.get("solver") not in (None, SOLVER):
        return None
    if model is None:
        raise ValueError("power_flow needs a network model: set `model` in the [deployment] table")
    return _solver.run(
        model,
        unbalanced=bool(options.get("unbalanced", False)),
        **{k: options[k] for k in _OPTIONS if k in options},
    )


@hookimpl
def dms_load_model(location: str, base_dir: Path):
    if is_example(location):
        return load_example(location)
    return None
