"""Entry point of the ``power_grid_model`` plugin: the ``power_flow`` study with solver "power-grid-model"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dms_hookspecs import StudyResult, hookimpl

from .solver import SOLVER_NAME, run_power_flow


@hookimpl
def dms_studies() -> list[str]:
    return ["power_flow"]


@hookimpl
def dms_run_study(study: str, model: Any, snapshot: Any, options: Mapping[str, Any]) -> StudyResult | None:
    if study != "power_flow" or options.get("solver") != SOLVER_NAME:
        return None
    if model is None:
        return StudyResult(study=study, solver=SOLVER_NAME, converged=False, message="the deployment has no network model")
    return run_power_flow(model, options)
