"""Entry point of the ``power_grid_model`` plugin: the ``power_flow`` study with solver "power-grid-model"."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from dms_hookspecs import StudyResult, hookimpl

from .solver import SOLVER_NAME, run_power_flow


@hookimpl
def dms_studies() -> list[str]:
    return ["power_flow"]


INLINE_MAX_OBJECTS = 100_000
"""Models up to this size (a 10,000-bus network is ~60,000 objects) are solved on the event-loop
thread: ~1 ms at 100 buses, ~10 ms at 10,000 buses — cheaper than the hop to a worker thread,
which costs 2–4 ms under load on a 2-core machine; ingest waits at most that long once per
cycle. Larger models go to a worker thread so ingest continues."""


@hookimpl
async def dms_run_study(study: str, model: Any, snapshot: Any, options: Mapping[str, Any]) -> StudyResult | None:
    # async: other plugins' studies and "not mine" answers cost no thread hop
    if study != "power_flow" or options.get("solver") != SOLVER_NAME:
        return None
    if model is None:
        return StudyResult(study=study, solver=SOLVER_NAME, converged=False, message="the deployment has no network model")
    if len(model) <= INLINE_MAX_OBJECTS:
        return run_power_flow(model, options)
    return await asyncio.to_thread(run_power_flow, model, options)
