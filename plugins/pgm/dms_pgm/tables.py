"""Result tables of a symmetric power flow, filled by numba kernels.

A balanced result repeats every node and branch value on phases 1, 2 and 3 (angles shifted by
0, -120, +120 degrees, a third of the power per phase). Done with numpy that is some fifty small
array operations per cycle — about 0.3 ms on a 100-bus network, as much as power-grid-model's
solve — so each table is filled here in one compiled loop over the rows instead. The arithmetic is
the numpy version's, operation by operation (see ``tests/test_pgm_solver.py``).

The kernels are compiled on first use — the solver's first run at startup — with ``cache=True``:
once per installation and array layout, then loaded from ``__pycache__``.
"""

from __future__ import annotations

import cmath
import math

from numba import njit

__all__ = ["fill_nodes", "fill_branches", "fill_three_winding", "fill_folded"]

_DEGREES = 180.0 / math.pi
_SHIFTS = (0.0, -120.0, 120.0)
_PER_PHASE = 1.0 / 3.0 / 1e6  # W -> MW, a third per phase


@njit(cache=True, inline="always")
def _wrap(degrees: float) -> float:
    return (degrees + 180.0) % 360.0 - 180.0


@njit(cache=True, inline="always")
def _max(a: float, b: float) -> float:
    """``np.maximum``: NaN if either is NaN."""
    if a != a or b != b:
        return math.nan
    return a if a >= b else b


@njit(cache=True, inline="always")
def _branch_row(table, row, current, p_from, q_from, p_to, q_to, loading) -> None:  # noqa: ANN001, PLR0913
    """Columns ``3*row .. 3*row+2`` of ``table``: kA, MW/Mvar per phase (W/var / 3), loading %."""
    values = (current / 1e3, p_from * _PER_PHASE, q_from * _PER_PHASE, p_to * _PER_PHASE, q_to * _PER_PHASE, loading * 100.0)
    for phase in range(3):
        column = 3 * row + phase
        for k in range(6):
            table[k, column] = values[k]


@njit(cache=True)
def fill_nodes(u_pu, u_angle, energized, phase_kv, vm, va, u_kv) -> None:  # noqa: ANN001 - numba arrays
    """Rows ``3*i .. 3*i+2`` of ``vm``/``va``/``u_kv`` from node ``i``; de-energised nodes NaN."""
    for i in range(u_pu.shape[0]):
        if energized[i]:
            magnitude = u_pu[i]
            angle = u_angle[i] * _DEGREES
            kv = magnitude * phase_kv[i]
        else:
            magnitude = angle = kv = math.nan
        for phase in range(3):
            row = 3 * i + phase
            vm[row] = magnitude
            va[row] = _wrap(angle + _SHIFTS[phase])
            u_kv[row] = kv


@njit(cache=True)
def fill_branches(p_from, q_from, p_to, q_to, i_from, i_to, loading, table, start) -> tuple[float, float]:  # noqa: ANN001
    """Columns ``3*(start+r) ..`` of ``table`` (i_ka, p/q from, p/q to, loading %) from branch ``r``.

    Returns the summed losses of these branches (W, var)."""
    losses_p = 0.0
    losses_q = 0.0
    for r in range(loading.shape[0]):
        losses_p += p_from[r] + p_to[r]
        losses_q += q_from[r] + q_to[r]
        _branch_row(table, start + r, _max(i_from[r], i_to[r]), p_from[r], q_from[r], p_to[r], q_to[r], loading[r])
    return losses_p, losses_q


@njit(cache=True)
def fill_three_winding(p_1, q_1, p_2, q_2, p_3, q_3, i_1, i_2, i_3, loading, table, start) -> tuple[float, float]:  # noqa: ANN001
    """:func:`fill_branches` for three-winding transformers: from = winding 1, to = windings 2 + 3."""
    losses_p = 0.0
    losses_q = 0.0
    for r in range(loading.shape[0]):
        p_to = p_2[r] + p_3[r]
        q_to = q_2[r] + q_3[r]
        losses_p += p_1[r] + p_to
        losses_q += q_1[r] + q_to
        _branch_row(table, start + r, _max(_max(i_1[r], i_2[r]), i_3[r]), p_1[r], q_1[r], p_to, q_to, loading[r])
    return losses_p, losses_q


@njit(cache=True)
def fill_folded(u_pu, u_angle, closed, dead, source, base, ratio, line_rows, at_from, sign,  # noqa: ANN001, PLR0913
                i_from, i_to, p_from, q_from, p_to, q_to, vm, va, u_kv, node_start, table, branch_start) -> None:
    """Nodes folded into line ends and their switches (see ``dms_pgm.solver._absorbed``).

    Switch closed: the folded node has the voltage of the node it was merged into. Open with the
    line energised from its other end: the open-end voltage ``V_other * ratio``. Otherwise NaN.
    The switch carries the flow at the line end it sits on, signed from its terminal 1."""
    for a in range(closed.shape[0]):
        s = source[a]
        v = u_pu[s] * cmath.exp(1j * u_angle[s])
        if not closed[a]:
            v = ratio[a] * v
        if dead[a]:
            magnitude = angle = kv = math.nan
        else:
            magnitude = abs(v)
            angle = math.atan2(v.imag, v.real) * _DEGREES
            kv = magnitude * base[a]
        row = line_rows[a]
        if at_from[a]:
            current, p, q = i_from[row], p_from[row], q_from[row]
        else:
            current, p, q = i_to[row], p_to[row], q_to[row]
        p = p * sign[a] * _PER_PHASE
        q = q * sign[a] * _PER_PHASE
        for phase in range(3):
            node_row = 3 * (node_start + a) + phase
            vm[node_row] = magnitude
            va[node_row] = _wrap(angle + _SHIFTS[phase])
            u_kv[node_row] = kv
            column = 3 * (branch_start + a) + phase
            table[0, column] = current / 1e3
            table[1, column] = p
            table[2, column] = q
            table[3, column] = -p
            table[4, column] = -q
            table[5, column] = 0.0

