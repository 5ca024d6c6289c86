"""Power-flow results in one schema for every solver plugin.

A solver returns a :class:`~dms_hookspecs.StudyResult` whose ``data`` is built by
:func:`power_flow_data`: per-phase node voltages and branch flows as column tables (dicts of
equal-length sequences: lists, tuples or 1-d numpy arrays — a solver may hand over its numpy
result columns without converting them), plus totals. :func:`rows` gives plain Python values
whatever the column type. Balanced solvers report phases 1, 2, 3 with the positive-
sequence magnitude and angles shifted by 0, -120 and +120 degrees, so every consumer reads
one format.

Node rows: ``node`` (mRID), ``name`` (CIM name, lower case), ``phase`` (1/2/3 for A/B/C),
``vm_pu``, ``va_deg``, ``u_kv`` (phase-to-neutral kV).

Branch rows: ``element`` (mRID), ``name``, ``kind`` (CIM class), ``phase``, ``i_ka`` (max of both
ends), ``p_from_mw``, ``q_from_mvar``, ``p_to_mw``, ``q_to_mvar``, ``loading_percent``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NODE_COLUMNS", "BRANCH_COLUMNS", "power_flow_data", "balanced_phases", "write_node_csv", "rows"]

NODE_COLUMNS = ("node", "name", "phase", "vm_pu", "va_deg", "u_kv")
BRANCH_COLUMNS = (
    "element", "name", "kind", "phase", "i_ka", "p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "loading_percent",
)


def _table(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> dict[str, list[Any]]:
    table: dict[str, list[Any]] = {column: [] for column in columns}
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row {row!r} does not have the columns {columns}")
        for column, value in zip(columns, row, strict=True):
            table[column].append(value)
    return table


def balanced_phases(node: str, name: str, vm_pu: float, va_deg: float, u_kv: float) -> list[tuple[Any, ...]]:
    """Three node rows (phases 1, 2, 3) for a balanced (positive-sequence) result."""
    return [
        (node, name, phase, vm_pu, _wrap(va_deg + shift), u_kv)
        for phase, shift in ((1, 0.0), (2, -120.0), (3, 120.0))
    ]


def _wrap(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0


def _columns(table: Mapping[str, Sequence[Any]], columns: Sequence[str]) -> dict[str, Sequence[Any]]:
    missing = [column for column in columns if column not in table]
    if missing:
        raise ValueError(f"column table lacks the columns {missing} (needs {columns})")
    lengths = {column: len(table[column]) for column in columns}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns of unequal length: {lengths}")
    return {column: table[column] for column in columns}


def power_flow_data(
    nodes: Iterable[Sequence[Any]] | Mapping[str, Sequence[Any]],
    branches: Iterable[Sequence[Any]] | Mapping[str, Sequence[Any]],
    *,
    losses_mw: float,
    losses_mvar: float,
    unbalanced: bool,
    iterations: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``data`` mapping of a power-flow :class:`~dms_hookspecs.StudyResult`.

    ``nodes``/``branches``: rows (tuples in :data:`NODE_COLUMNS`/:data:`BRANCH_COLUMNS` order), or
    a column table (mapping of column name to an equal-length list or numpy array), used as is.
    """
    return {
        "nodes": _columns(nodes, NODE_COLUMNS) if isinstance(nodes, Mapping) else _table(nodes, NODE_COLUMNS),
        "branches": _columns(branches, BRANCH_COLUMNS) if isinstance(branches, Mapping) else _table(branches, BRANCH_COLUMNS),
        "losses_mw": float(losses_mw),
        "losses_mvar": float(losses_mvar),
        "unbalanced": unbalanced,
        "iterations": iterations,
        **extra,
    }


def rows(table: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """A column table as a list of row dicts (numpy columns give Python floats/ints/strs)."""
    columns = list(table)
    data = [table[c].tolist() if isinstance(table[c], np.ndarray) else table[c] for c in columns]
    return [dict(zip(columns, values, strict=True)) for values in zip(*data, strict=True)]


def write_node_csv(data: Mapping[str, Any], path: Path) -> None:
    """Write ``node,phase,vm_pu,va_deg`` (node = lower-case CIM name), one row per node and phase."""
    nodes = data["nodes"]
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["node", "phase", "vm_pu", "va_deg"])
        for row in sorted(rows(nodes), key=lambda r: (r["name"], r["phase"])):
            writer.writerow([row["name"], row["phase"], f"{row['vm_pu']:.6f}", f"{row['va_deg']:.4f}"])
