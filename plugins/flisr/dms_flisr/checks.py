"""Power-flow check of a switch state (power-grid-model, the model's live loads)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from dms_pgm.solver import run_power_flow

from dms_kernel.model import NetworkModel, Switch

from .restore import Check

__all__ = ["power_flow_check"]


def power_flow_check(model: NetworkModel, *, v_min: float = 0.9, v_max: float = 1.1, loading_max: float = 100.0,
                     options: Mapping[str, Any] | None = None) -> Callable[[Mapping[str, bool]], Check]:
    """``check(state)``: apply the switch state (switch -> open) to the model, solve, restore the
    model, and return the violations of the energised part: voltage-band excess (pu, summed over
    node phases) + loading excess above ``loading_max`` (per 100 %)."""
    switches = {s.mrid: s for s in model.of_type(Switch)}
    options = dict(options or {})

    def check(state: Mapping[str, bool]) -> Check:
        before = {mrid: s.open for mrid, s in switches.items()}
        try:
            for mrid, is_open in state.items():
                switches[mrid].open = bool(is_open)
            result = run_power_flow(model, options)
        finally:
            for mrid, is_open in before.items():
                switches[mrid].open = is_open
        if not result.converged:
            return Check(False, math.inf, math.nan, math.nan, math.nan)
        vm = np.asarray(result.data["nodes"]["vm_pu"], dtype=float)
        vm = vm[np.isfinite(vm)]
        loading = np.asarray(result.data["branches"]["loading_percent"], dtype=float)
        loading = loading[np.isfinite(loading)]
        excess = float(np.sum(np.clip(vm - v_max, 0, None)) + np.sum(np.clip(v_min - vm, 0, None)))
        overload = float(np.sum(np.clip(loading - loading_max, 0, None)) / 100.0)
        return Check(True, excess + overload, float(vm.min()) if len(vm) else math.nan, float(vm.max()) if len(vm) else math.nan,
                     float(loading.max()) if len(loading) else 0.0)

    return check
