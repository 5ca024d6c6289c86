"""Balanced results of a converted pandapower net as power-flow result tables (three phase rows
per node and branch), shared by the power-flow solver and the state estimator (``dms_se``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dms_kernel.model.results import power_flow_data

from .convert import PandapowerNetwork

_SQRT3 = math.sqrt(3.0)
_SHIFTS = np.array([0.0, -120.0, 120.0])
_BRANCH_COLUMNS = ("i_ka", "p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "loading_percent")


class ResultLayout:
    """Where the model's nodes and branches stand in a converted net's tables, and the static
    columns of a result on it (id, name, kind, phase: three rows per node and branch)."""

    def __init__(self, network: PandapowerNetwork) -> None:
        net = network.net
        nodes = network.nodes
        buses = np.fromiter((network.bus_of[n] for n in nodes), int, len(nodes))
        self.bus_positions = net.bus.index.get_indexer(buses)
        self.phase_kv = net.bus.vn_kv.to_numpy(dtype=float)[self.bus_positions] / _SQRT3
        self.node_ids = [n for n in nodes for _ in range(3)]
        self.node_names = [n for n in network.node_names for _ in range(3)]
        self.node_phases = [1, 2, 3] * len(nodes)
        #: branch table ("line", "trafo", "trafo3w") -> positions of the model's branches in it
        self.branch_tables: dict[str, np.ndarray] = {}
        ids: list[str] = []
        names: list[str] = []
        kinds: list[str] = []
        for table in ("line", "trafo", "trafo3w"):
            rows = [b for b in network.branches if b[3] == table]
            if not rows:
                continue
            self.branch_tables[table] = net[table].index.get_indexer([b[4] for b in rows])
            for mrid, name, kind, _, _ in rows:
                ids.extend((mrid, mrid, mrid))
                names.extend((name, name, name))
                kinds.extend((kind, kind, kind))
        self.branch_ids, self.branch_names, self.branch_kinds = ids, names, kinds
        self.branch_phases = [1, 2, 3] * (len(ids) // 3)

    def node_columns(self) -> dict[str, list[Any]]:
        """``node``, ``name``, ``phase`` of the node rows."""
        return {"node": list(self.node_ids), "name": list(self.node_names), "phase": list(self.node_phases)}

    def branch_columns(self) -> dict[str, list[Any]]:
        """``element``, ``name``, ``kind``, ``phase`` of the branch rows."""
        return {
            "element": list(self.branch_ids),
            "name": list(self.branch_names),
            "kind": list(self.branch_kinds),
            "phase": list(self.branch_phases),
        }


def branch_results(
    net: Any, layout: ResultLayout, suffix: str = "", internal_losses: bool = True
) -> tuple[dict[str, list[np.ndarray]], float, float]:
    """Per-phase branch columns (one array per branch table) and the losses (MW, Mvar) from the
    balanced results ``res_<table><suffix>``; a missing table or column gives NaN.

    :param internal_losses: the losses of the whole result tables, with the internal
        source-impedance lines that are not model branches (power flow); ``False``: only
        the model's branches (state estimation).
    """
    columns: dict[str, list[np.ndarray]] = {k: [] for k in _BRANCH_COLUMNS}
    losses_p = losses_q = 0.0
    for table, positions in layout.branch_tables.items():
        res_table = net.get(f"res_{table}{suffix}")
        if res_table is None or not len(res_table):
            for name in columns:
                columns[name].append(np.full(3 * len(positions), np.nan))
            continue

        def col(name: str, rows: np.ndarray = positions, res_table: Any = res_table) -> np.ndarray:
            if name not in res_table:
                return np.full(len(rows), np.nan)
            return res_table[name].to_numpy(dtype=float)[rows]

        if table == "line":
            i_ka = col("i_ka")
            flows = (col("p_from_mw"), col("q_from_mvar"), col("p_to_mw"), col("q_to_mvar"))
        elif table == "trafo":
            i_ka = np.fmax(col("i_hv_ka"), col("i_lv_ka"))
            flows = (col("p_hv_mw"), col("q_hv_mvar"), col("p_lv_mw"), col("q_lv_mvar"))
        else:
            i_ka = np.fmax(np.fmax(col("i_hv_ka"), col("i_mv_ka")), col("i_lv_ka"))
            flows = (
                col("p_hv_mw"),
                col("q_hv_mvar"),
                col("p_mv_mw") + col("p_lv_mw"),
                col("q_mv_mvar") + col("q_lv_mvar"),
            )
        columns["i_ka"].append(np.repeat(i_ka, 3))
        for name, values in zip(("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"), flows, strict=True):
            columns[name].append(np.repeat(values / 3.0, 3))
        columns["loading_percent"].append(np.repeat(col("loading_percent"), 3))
        counted = np.arange(len(res_table)) if internal_losses else positions
        losses_p += float(np.nansum(col("pl_mw", counted)))
        losses_q += float(np.nansum(col("ql_mvar", counted)))
    return columns, losses_p, losses_q


def balanced_result(
    net: Any,
    layout: ResultLayout,
    *,
    suffix: str = "",
    internal_losses: bool = True,
    iterations: int | None = None,
    as_lists: bool = True,
) -> dict[str, Any]:
    """The ``power_flow_data`` of the balanced results ``res_bus<suffix>`` and
    ``res_<branch><suffix>`` (``"_est"``: a state estimate); see :func:`branch_results`.

    :param as_lists: result columns as lists (else numpy arrays).
    """
    res = net[f"res_bus{suffix}"]
    vm = res.vm_pu.to_numpy(dtype=float)[layout.bus_positions]
    va = res.va_degree.to_numpy(dtype=float)[layout.bus_positions]
    angles = (va[:, None] + _SHIFTS[None, :] + 180.0) % 360.0 - 180.0
    vm3 = np.repeat(vm, 3)
    columns, losses_p, losses_q = branch_results(net, layout, suffix, internal_losses)
    data = power_flow_data(
        (), (), losses_mw=losses_p, losses_mvar=losses_q, unbalanced=False, iterations=iterations
    )
    convert = _as_list if as_lists else _as_array
    nodes = {"vm_pu": vm3, "va_deg": angles.reshape(-1), "u_kv": vm3 * np.repeat(layout.phase_kv, 3)}
    data["nodes"].update(layout.node_columns(), **{k: convert(v) for k, v in nodes.items()})
    data["branches"].update(layout.branch_columns())
    for name, parts in columns.items():
        data["branches"][name] = convert(np.concatenate(parts) if parts else np.zeros(0))
    return data


def _as_list(values: np.ndarray) -> list[float]:
    return values.tolist()


def _as_array(values: np.ndarray) -> np.ndarray:
    return values

