"""Power-flow check of a switch state (power-grid-model, the model's live loads)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from dms_pgm.solver import run_power_flow

from dms_kernel.model import NetworkModel, Switch

from .restore import Check

__all__ = ["power_flow_check", "sequential", "BatchCheck"]


def power_flow_check(model: NetworkModel, *, v_min: float = 0.9, v_max: float = 1.1, loading_max: float = 100.0,
                     options: Mapping[str, Any] | None = None) -> Callable[[Mapping[str, bool]], Check]:
    """One power flow per call (any switch representation; see :class:`BatchCheck` for many)."""
    return _single(model, v_min=v_min, v_max=v_max, loading_max=loading_max, options=options)


def sequential(check: Callable[[Mapping[str, bool]], Check]) -> Callable[[list[Mapping[str, bool]]], list[Check]]:
    """A list-of-states checker from a single-state one."""
    return lambda states: [check(s) for s in states]


def _single(model: NetworkModel, *, v_min: float, v_max: float, loading_max: float,
            options: Mapping[str, Any] | None) -> Callable[[Mapping[str, bool]], Check]:
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


class BatchCheck:
    """Many switch states in one power-grid-model batch calculation (each scenario a status
    update of links and line ends; see ``dms_pgm.convert`` for how switches are mapped).

    ``checker(states)`` -> one :class:`Check` per state; a scenario that does not converge
    gives ``Check(False, inf, ...)``. The batch runs on every core (``threading=0``).
    """

    def __init__(self, model: NetworkModel, *, v_min: float = 0.9, v_max: float = 1.1, loading_max: float = 100.0) -> None:
        from dms_pgm.solver import network_for
        from power_grid_model import ComponentType

        self.C = ComponentType
        self.v_min, self.v_max, self.loading_max = v_min, v_max, loading_max
        self.model = model
        self.net = network_for(model, False)
        with self.net.lock:
            self.net.update(model)
        links = self.net.input_data.get(ComponentType.link)
        self.link_index = {int(i): k for k, i in enumerate(links["id"])} if links is not None else {}
        self.switch_link: dict[str, int] = {}
        for switch in model.of_type(Switch):
            ids = self.net.element_ids.get(switch.mrid)
            if ids and ids[0] in self.link_index:
                self.switch_link[switch.mrid] = self.link_index[ids[0]]
        self.switch_line: dict[str, tuple[int, int]] = {
            switch.mrid: (self.net.line_row[line.mrid], side) for _, switch, _, line, side in self.net.absorbed
        }
        self.calls = 0

    def __call__(self, states: list[Mapping[str, bool]]) -> list[Check]:
        n = len(states)
        if n == 0:
            return []
        self.calls += n
        with self.net.lock:  # the converted network is shared with the cyclic power flow
            return self._batch(states, n)

    def _batch(self, states: list[Mapping[str, bool]], n: int) -> list[Check]:
        from power_grid_model import DatasetType, initialize_array
        from power_grid_model.errors import PowerGridBatchError

        C = self.C
        self.net.update(self.model)
        update: dict[Any, np.ndarray] = {}
        if self.link_index:
            base = self.net.input_data[C.link]
            pushed = self.net._pushed.get(C.link, {})  # noqa: SLF001 - the statuses last pushed
            arr = initialize_array(DatasetType.update, C.link, (n, len(base)))
            arr["id"] = base["id"][None, :]
            arr["from_status"] = np.asarray(pushed.get("from_status", base["from_status"]))[None, :]
            arr["to_status"] = np.asarray(pushed.get("to_status", base["to_status"]))[None, :]
            update[C.link] = arr
        if self.switch_line:
            base = self.net.input_data[C.line]
            arr = initialize_array(DatasetType.update, C.line, (n, len(base)))
            arr["id"] = base["id"][None, :]
            arr["from_status"] = self.net.line_status[0][None, :]
            arr["to_status"] = self.net.line_status[1][None, :]
            update[C.line] = arr
        for k, state in enumerate(states):
            for mrid, is_open in state.items():
                closed = 0 if is_open else 1
                if mrid in self.switch_link:
                    row = self.switch_link[mrid]
                    update[C.link]["from_status"][k, row] = closed
                    update[C.link]["to_status"][k, row] = closed
                elif mrid in self.switch_line:
                    row, side = self.switch_line[mrid]
                    update[C.line]["from_status" if side == 0 else "to_status"][k, row] = closed
        outputs = {C.node: ["u_pu", "energized"]}
        for component in (C.line, C.link, C.transformer):
            if component in self.net.input_data:
                outputs[component] = ["loading"]
        failed: set[int] = set()
        try:
            out = self.net.model.calculate_power_flow(update_data=update, threading=0, output_component_types=outputs,
                                                      continue_on_batch_error=True)
        except PowerGridBatchError as exc:  # pragma: no cover - continue_on_batch_error keeps the others
            raise RuntimeError(str(exc)) from exc
        errors = getattr(self.net.model, "_batch_error", None)
        if errors is not None:
            failed = set(int(i) for i in getattr(errors, "failed_scenarios", []))
        u = np.where(out[C.node]["energized"].astype(bool), out[C.node]["u_pu"], np.nan)
        loads = [out[c]["loading"] * 100.0 for c in (C.line, C.link, C.transformer) if c in out]
        loading = np.concatenate(loads, axis=1) if loads else np.zeros((n, 0))
        checks = []
        for k in range(n):
            vm = u[k][np.isfinite(u[k])]
            lk = loading[k][np.isfinite(loading[k])]
            if k in failed or (len(vm) == 0 and len(u[k])):
                checks.append(Check(False, math.inf, math.nan, math.nan, math.nan))
                continue
            excess = float(np.sum(np.clip(vm - self.v_max, 0, None)) + np.sum(np.clip(self.v_min - vm, 0, None)))
            overload = float(np.sum(np.clip(lk - self.loading_max, 0, None)) / 100.0)
            checks.append(Check(True, excess + overload, float(vm.min()), float(vm.max()), float(lk.max()) if len(lk) else 0.0))
        return checks
