"""Power flow with power-grid-model: cached conversion, update per call, results in the common schema."""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from power_grid_model import CalculationMethod, ComponentType
from power_grid_model.errors import PowerGridError

from dms_hookspecs import StudyResult
from dms_kernel.model import NetworkModel
from dms_kernel.model.results import power_flow_data

from . import tables
from .convert import PgmNetwork, to_pgm

__all__ = ["SOLVER_NAME", "COLUMNAR_OUTPUT_MIN_NODES", "network_for", "output_request", "calculate", "results_data", "run_power_flow"]

SOLVER_NAME = "power-grid-model"
C = ComponentType
_BRANCHES = (C.line, C.link, C.transformer)
_BRANCH_OUTPUT = ["p_from", "q_from", "p_to", "q_to", "i_from", "i_to", "loading"]
#: the output attributes the result tables use, as columns (contiguous arrays, nothing else computed)
_OUTPUTS = {
    C.node: ["u_pu", "u_angle", "energized"],
    **{component: _BRANCH_OUTPUT for component in _BRANCHES},
    C.three_winding_transformer: ["p_1", "q_1", "p_2", "q_2", "p_3", "q_3", "i_1", "i_2", "i_3", "loading"],
}
COLUMNAR_OUTPUT_MIN_NODES = 5000
"""From this many nodes on, power-grid-model returns only the needed output columns (columnar
output: less data); below it whole rows per component, because each requested column costs
~10 µs in power-grid-model's Python layer — at 100 nodes the columnar output doubled the
solve (0.49 vs 0.24 ms), at 10,000 nodes both forms take the same time."""


def output_request(columns: Mapping[ComponentType, list[str]], nodes: int) -> dict[ComponentType, list[str]] | set[ComponentType]:
    """``output_component_types`` for a calculation on ``nodes`` nodes: ``columns`` (component ->
    attributes) on large networks, only the components (whole rows) on small ones. The result
    arrays are indexed the same way (``output[component]["u_pu"]``) in both forms."""
    return dict(columns) if nodes >= COLUMNAR_OUTPUT_MIN_NODES else set(columns)


_FLOW_COLUMNS = ("i_ka", "p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "loading_percent")
_cache: weakref.WeakKeyDictionary[NetworkModel, dict[tuple[bool, bool], PgmNetwork]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def network_for(model: NetworkModel, asymmetric: bool, source_impedance: bool = False) -> PgmNetwork:
    """The cached conversion of ``model`` (converted on first use, again only if objects were added/removed)."""
    key = (asymmetric, source_impedance)
    with _lock:
        per_model = _cache.setdefault(model, {})
        net = per_model.get(key)
        if net is None or net.object_count != len(model):
            net = per_model[key] = to_pgm(model, asymmetric=asymmetric, source_impedance=source_impedance)
        return net


def calculate(net: PgmNetwork, *, error_tolerance: float = 1e-8, max_iterations: int = 20) -> dict[ComponentType, dict[str, np.ndarray]]:
    """One Newton-Raphson power flow on the (updated) model; symmetric unless ``net.asymmetric``.

    The output holds, per node/branch component, the columns the result tables use
    (component -> attribute -> array). The calculation is prepared once per network and settings
    (:meth:`PgmNetwork.prepared`): the output arrays are the same on every call, overwritten by
    the next one.

    :raises PowerGridError: not converged or singular.
    """
    assert net.model is not None
    return net.prepared(
        calculation_method=CalculationMethod.newton_raphson,
        error_tolerance=error_tolerance,
        max_iterations=max_iterations,
        output_component_types=output_request(
            {c: _OUTPUTS[c] for c in (C.node, *_BRANCHES, C.three_winding_transformer) if c in net.input_data}, len(net.node_mrids)
        ),
    ).run()


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + 180.0) % 360.0 - 180.0


class _Static:
    """Per converted network: what the result tables need that does not change between cycles."""

    def __init__(self, net: PgmNetwork) -> None:
        node_ids = [*net.node_mrids, *(a[0] for a in net.absorbed)]
        node_names = [*net.node_names, *net.absorbed_names]
        info = [row for component in (*_BRANCHES, C.three_winding_transformer) for row in net.branches.get(component, ())]
        info += [(switch.mrid, switch.name, type(switch).__name__) for _, switch, *_ in net.absorbed]
        # identity columns: built once, shared (immutable tuples) by every result of this network
        self.nodes = {
            "node": tuple(n for n in node_ids for _ in range(3)),
            "name": tuple(n for n in node_names for _ in range(3)),
            "phase": tuple([1, 2, 3] * len(node_ids)),
        }
        self.branches = {
            "element": tuple(e for e, _, _ in info for _ in range(3)),
            "name": tuple((n or e).lower() for e, n, _ in info for _ in range(3)),
            "kind": tuple(k for _, _, k in info for _ in range(3)),
            "phase": tuple([1, 2, 3] * len(info)),
        }
        self.shifts = np.tile([0.0, -120.0, 120.0], len(net.node_mrids))
        self.phase_kv = net.u_rated / math.sqrt(3) / 1e3
        if net.absorbed:
            lines_in = net.input_data[C.line]
            rows = np.array([net.line_row[a[3].mrid] for a in net.absorbed], dtype=np.int64)
            at_from = np.array([a[4] == 0 for a in net.absorbed])
            self.absorbed_rows, self.absorbed_at_from = rows, at_from
            self.absorbed_sign = np.repeat(np.array([1.0 if a[2] == 1 else -1.0 for a in net.absorbed]), 3)  # flow from switch terminal 1
            self.absorbed_kept = np.where(at_from, lines_in["from_node"][rows], lines_in["to_node"][rows])
            self.absorbed_other = np.where(at_from, lines_in["to_node"][rows], lines_in["from_node"][rows])
            ys = 1.0 / (lines_in["r1"][rows] + 1j * lines_in["x1"][rows])
            ysh = 1j * 2 * math.pi * net.frequency * lines_in["c1"][rows]
            self.absorbed_ratio = ys / (ys + ysh / 2)
            self.absorbed_shifts = np.tile([0.0, -120.0, 120.0], len(rows))
            u_base = net.u_rated / (math.sqrt(3) * 1e3)
            self.absorbed_base = (u_base[self.absorbed_kept], u_base[self.absorbed_other])
            self.absorbed_sign_node = np.array([1.0 if a[2] == 1 else -1.0 for a in net.absorbed])
        self.masks: tuple[Any, ...] | None = None  #: (closed, line status, energized bytes) -> absorbed masks


def _absorbed_masks(net: PgmNetwork, static: _Static, energized: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(closed, not live, source node, base kV)`` of the folded nodes; recomputed only when the
    switch states, line statuses (the arrays :meth:`PgmNetwork.update` keeps while unchanged) or
    the energised nodes changed."""
    key = energized.tobytes()
    cached = static.masks
    if cached is not None and cached[0] is net.absorbed_closed and cached[1] is net.line_status and cached[2] == key:
        return cached[3]
    rows, at_from, kept, other = static.absorbed_rows, static.absorbed_at_from, static.absorbed_kept, static.absorbed_other
    far_on = np.where(at_from, net.line_status[1][rows], net.line_status[0][rows]).astype(bool)
    closed = net.absorbed_closed
    open_end = ~closed & far_on & energized[other]
    live = (closed & energized[kept]) | open_end
    masks = (closed, ~live, np.where(closed, kept, other), np.where(closed, *static.absorbed_base))
    static.masks = (net.absorbed_closed, net.line_status, key, masks)
    return masks


def _results_sym(net: PgmNetwork, static: _Static, output: Mapping[ComponentType, np.ndarray]) -> dict[str, Any]:
    """:func:`results_data` of a symmetric run: the per-phase node and branch tables are filled by
    the numba kernels of :mod:`dms_pgm.tables` (nodes, then folded nodes; branches, then the
    switches of folded nodes), a handful of calls instead of some fifty numpy operations."""
    nodes = output[C.node]
    u_pu, u_angle = nodes["u_pu"], nodes["u_angle"]
    n = len(net.node_mrids)
    absorbed = len(net.absorbed)
    node_table = np.empty((3, 3 * (n + absorbed)))
    vm, va, u_kv = node_table
    tables.fill_nodes(u_pu, u_angle, nodes["energized"], static.phase_kv, vm, va, u_kv)
    parts = [(component, output[component]) for component in (*_BRANCHES, C.three_winding_transformer) if component in output]
    nb = sum(len(out["loading"]) for _, out in parts)  # rows (a columnar output is a dict of columns)
    table = np.empty((6, 3 * (nb + absorbed)))
    losses_p = losses_q = 0.0
    offset = 0
    for component, out in parts:
        if component == C.three_winding_transformer:
            p, q = tables.fill_three_winding(
                out["p_1"], out["q_1"], out["p_2"], out["q_2"], out["p_3"], out["q_3"],
                out["i_1"], out["i_2"], out["i_3"], out["loading"], table, offset,
            )
        else:
            p, q = tables.fill_branches(
                out["p_from"], out["q_from"], out["p_to"], out["q_to"], out["i_from"], out["i_to"], out["loading"], table, offset
            )
        losses_p += p
        losses_q += q
        offset += len(out["loading"])
    if absorbed:
        closed, dead, source, base = _absorbed_masks(net, static, nodes["energized"].astype(bool))
        lines_out = output[C.line]  # folded switches sit on line ends
        tables.fill_folded(
            u_pu, u_angle, closed, dead, source, base, static.absorbed_ratio, static.absorbed_rows, static.absorbed_at_from,
            static.absorbed_sign_node, lines_out["i_from"], lines_out["i_to"], lines_out["p_from"], lines_out["q_from"],
            lines_out["p_to"], lines_out["q_to"], vm, va, u_kv, n, table, nb,
        )
    branches: dict[str, Any] = dict(static.branches)
    branches.update(zip(_FLOW_COLUMNS, table, strict=True))
    return power_flow_data(
        {**static.nodes, "vm_pu": vm, "va_deg": va, "u_kv": u_kv},
        branches,
        losses_mw=losses_p / 1e6,
        losses_mvar=losses_q / 1e6,
        unbalanced=False,
    )


def _static(net: PgmNetwork) -> _Static:
    static = getattr(net, "_result_static", None)
    if static is None:
        static = net._result_static = _Static(net)  # type: ignore[attr-defined]
    return static


def _absorbed(net: PgmNetwork, static: _Static, output: Mapping[ComponentType, np.ndarray], energized: np.ndarray):
    """Voltages (3 rows each) of the nodes folded into line ends, and the branch columns of their switches.

    Switch closed: the node is the kept node. Switch open with the line energised from its other
    end: the open-end voltage of the line's pi model, ``V_other * ys / (ys + ysh/2)`` (per phase
    in asymmetric mode). Otherwise de-energised (NaN).
    """
    asym = net.asymmetric
    nodes = output[C.node]
    lines_out = output[C.line]
    rows, at_from, kept, other = static.absorbed_rows, static.absorbed_at_from, static.absorbed_kept, static.absorbed_other
    u_base = net.u_rated / (1e3 if asym else math.sqrt(3) * 1e3)
    far_on = np.where(at_from, net.line_status[1][rows], net.line_status[0][rows]).astype(bool)
    closed = net.absorbed_closed
    open_end = ~closed & far_on & energized[other]
    live = (closed & energized[kept]) | open_end
    expand = (lambda x: x[:, None]) if asym else (lambda x: x)
    u_pu, u_angle = nodes["u_pu"], nodes["u_angle"]
    v_kept = u_pu[kept] * np.exp(1j * u_angle[kept])
    v_other = u_pu[other] * np.exp(1j * u_angle[other])
    value = np.where(expand(closed), v_kept, expand(static.absorbed_ratio) * v_other)
    value = np.where(expand(live), value, np.nan)
    base = np.where(closed, u_base[kept], u_base[other])
    if asym:
        vm, va = np.abs(value).ravel(), _wrap(np.degrees(np.angle(value))).ravel()
        u_kv = (np.abs(value) * base[:, None]).ravel()
    else:
        vm = np.repeat(np.abs(value), 3)
        va = _wrap(np.repeat(np.degrees(np.angle(value)), 3) + static.absorbed_shifts)
        u_kv = np.repeat(np.abs(value) * base, 3)
    share = 1.0 if asym else 1.0 / 3.0

    def side(quantity: str) -> np.ndarray:
        values = np.where(expand(at_from), lines_out[f"{quantity}_from"][rows], lines_out[f"{quantity}_to"][rows])
        return values.ravel() if asym else np.repeat(values, 3)

    p = side("p") * static.absorbed_sign * (share / 1e6)
    q = side("q") * static.absorbed_sign * (share / 1e6)
    columns = {
        "i_ka": side("i") / 1e3, "p_from_mw": p, "q_from_mvar": q, "p_to_mw": -p, "q_to_mvar": -q,
        "loading_percent": np.zeros(3 * len(rows)),
    }
    return vm, va, u_kv, columns


def results_data(net: PgmNetwork, output: Mapping[ComponentType, np.ndarray]) -> dict[str, Any]:
    """The power-flow ``data`` mapping (:func:`dms_kernel.model.results.power_flow_data`) of a pgm output.

    Balanced runs report phases 1, 2, 3 with the positive-sequence voltage (angles shifted by 0,
    -120, +120 degrees, as :func:`~dms_kernel.model.results.balanced_phases`) and a third of the
    branch power per phase. De-energised nodes have NaN voltages. A three-winding transformer is
    one row: ``p_from`` = winding 1, ``p_to`` = windings 2 + 3. The tables are column tables:
    numeric columns are numpy arrays, the identity columns (node, name, phase, element, kind) are
    tuples built once per converted network and shared by every result (10,000 nodes would cost
    ~90 ms row by row, ~5 ms as Python lists).
    """
    static = _static(net)
    if not net.asymmetric:
        return _results_sym(net, static, output)
    return _results_numpy(net, static, output)


def _results_numpy(net: PgmNetwork, static: _Static, output: Mapping[ComponentType, np.ndarray]) -> dict[str, Any]:
    """:func:`results_data` with numpy array operations, symmetric or asymmetric (for a symmetric
    run the reference of the compiled :func:`_results_sym`)."""
    asym = net.asymmetric
    nodes = output[C.node]
    energized = nodes["energized"].astype(bool)
    if asym:
        vm = np.where(energized[:, None], nodes["u_pu"], np.nan).ravel()
        va = _wrap(np.degrees(nodes["u_angle"])).ravel()
        u_kv = np.where(energized[:, None], nodes["u_pu"] * static.phase_kv[:, None], np.nan).ravel()
    else:
        vm_node = np.where(energized, nodes["u_pu"], np.nan)
        vm = np.repeat(vm_node, 3)
        va = _wrap(np.repeat(np.degrees(nodes["u_angle"]), 3) + static.shifts)
        u_kv = np.repeat(vm_node * static.phase_kv, 3)
    if net.absorbed:
        vm_a, va_a, ukv_a, extra = _absorbed(net, static, output, energized)
        vm, va, u_kv = np.concatenate([vm, vm_a]), np.concatenate([va, va_a]), np.concatenate([u_kv, ukv_a])
    va[np.isnan(vm)] = np.nan

    # branch columns of all components joined first, so each quantity costs one numpy call per cycle
    parts: dict[str, list[np.ndarray]] = {"i": [], "p_from": [], "q_from": [], "p_to": [], "q_to": [], "loading": []}
    for component in (*_BRANCHES, C.three_winding_transformer):
        if component not in output:
            continue
        out = output[component]
        if component == C.three_winding_transformer:
            parts["p_from"].append(out["p_1"])
            parts["q_from"].append(out["q_1"])
            parts["p_to"].append(out["p_2"] + out["p_3"])
            parts["q_to"].append(out["q_2"] + out["q_3"])
            parts["i"].append(np.maximum(np.maximum(out["i_1"], out["i_2"]), out["i_3"]))
        else:
            for name in ("p_from", "q_from", "p_to", "q_to"):
                parts[name].append(out[name])
            parts["i"].append(np.maximum(out["i_from"], out["i_to"]))
        parts["loading"].append(out["loading"])
    blocks = []
    losses_p = losses_q = 0.0
    if parts["i"]:
        joined = {name: arrays[0] if len(arrays) == 1 else np.concatenate(arrays) for name, arrays in parts.items()}
        p_from, q_from, p_to, q_to = joined["p_from"], joined["q_from"], joined["p_to"], joined["q_to"]
        losses_p = float((p_from + p_to).sum()) / 1e6
        losses_q = float((q_from + q_to).sum()) / 1e6
        scale = (1.0 if asym else 1.0 / 3.0) / 1e6
        loading = joined["loading"] * 100.0
        if asym:
            blocks.append(np.stack([
                joined["i"].ravel() / 1e3, (p_from * scale).ravel(), (q_from * scale).ravel(),
                (p_to * scale).ravel(), (q_to * scale).ravel(), np.repeat(loading, 3),
            ]))
        else:
            blocks.append(np.repeat(np.stack([joined["i"] / 1e3, p_from * scale, q_from * scale, p_to * scale, q_to * scale, loading]), 3, axis=1))
    if net.absorbed:
        blocks.append(np.stack([extra[name] for name in _FLOW_COLUMNS]))
    table = (blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)) if blocks else np.zeros((len(_FLOW_COLUMNS), 0))
    branches: dict[str, Any] = dict(static.branches)
    branches.update(zip(_FLOW_COLUMNS, table, strict=True))
    return power_flow_data(
        {**static.nodes, "vm_pu": vm, "va_deg": va, "u_kv": u_kv},
        branches,
        losses_mw=losses_p,
        losses_mvar=losses_q,
        unbalanced=asym,
    )


def run_power_flow(model: NetworkModel, options: Mapping[str, Any]) -> StudyResult:
    """Update the cached network from ``model``, solve, and return the study result.

    Options: ``unbalanced`` (asymmetric calculation), ``source_impedance`` (model the EnergySource
    Thevenin impedance, default off: ideal source), ``tolerance`` (pu, default 1e-8),
    ``max_iterations`` (default 20). Not converging gives ``converged=False`` with the message.
    """
    started = time.time()
    net = network_for(model, bool(options.get("unbalanced", False)), bool(options.get("source_impedance", False)))
    mode = "asymmetric" if net.asymmetric else "symmetric"
    with net.lock:  # the prepared output arrays are shared: one solve at a time per network
        net.update(model)
        try:
            output = calculate(
                net,
                error_tolerance=float(options.get("tolerance", 1e-8)),
                max_iterations=int(options.get("max_iterations", 20)),
            )
        except PowerGridError as exc:
            return StudyResult(
                study="power_flow", solver=SOLVER_NAME, converged=False,
                message=f"power-grid-model {mode} Newton-Raphson did not converge: {type(exc).__name__}: {exc}".strip(),
            )
        data = results_data(net, output)
    return StudyResult(
        study="power_flow", solver=SOLVER_NAME, converged=True, data=data,
        message=f"power-grid-model {mode} Newton-Raphson converged in {1e3 * (time.time() - started):.1f} ms; "
        f"losses {data['losses_mw']:.6f} MW",
    )
