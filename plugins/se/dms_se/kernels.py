"""Per-cycle sensor arithmetic of the power-grid-model estimator, compiled with numba.

A symmetric estimate fills the voltage and power sensor updates from the plan's values, then
computes the objective ``J`` and the residual table from power-grid-model's residuals. In numpy
that is over a hundred small array operations per cycle (~0.4 ms on a 100-bus network, half the
estimator's own solve); here each is one loop over the rows. The arithmetic is the numpy
version's (:class:`dms_se.pgm_estimator.PgmEstimator`, still used for asymmetric estimates,
per-point accuracies and phasor angles, and the reference in ``tests/test_compiled_sensors.py``).

Units as there: plan values in kV (ph-ph), MW, Mvar; sensor values in V, W, var.
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["voltage_sensors", "power_sensors", "objective", "residual_table"]


@njit(cache=True, inline="always")
def _sigma(relative: float, value: float, floor: float) -> float:
    return max(relative * abs(value), floor)


@njit(cache=True)
def voltage_sensors(values, use, rows, folded, folded_closed, base, relative, floor, volts, sigma) -> None:  # noqa: ANN001
    """Measured voltage (V) and sigma of each voltage sensor; unusable (or behind an open folded
    switch): the nominal voltage with an infinite sigma ("not measured")."""
    for s in range(rows.shape[0]):
        k = rows[s]
        ok = use[k] and (folded[s] < 0 or folded_closed[folded[s]])
        u = values[k] * 1e3 if ok else base[s]
        volts[s] = u
        sigma[s] = _sigma(relative, u / base[s], floor) * base[s] if ok else math.inf


@njit(cache=True, inline="always")
def _branch_value(values, use, k, relative, floor, measured, sigma, j) -> None:  # noqa: ANN001, PLR0913
    """Sensor ``j`` from plan row ``k`` (W or var); no usable row: 0 with an infinite sigma."""
    if k >= 0 and use[k]:
        measured[j] = values[k] * 1e6
        sigma[j] = _sigma(relative, values[k], floor) * 1e6
    else:
        measured[j] = 0.0
        sigma[j] = math.inf


@njit(cache=True)
def power_sensors(values, use, bp_p, bp_q, app_p, app_q, conv_p, conv_q, share, p0, q0, ratio,  # noqa: ANN001, PLR0913
                  relative, floor, pseudo_relative, pseudo_floor, p_meas, q_meas, p_sig, q_sig) -> None:
    """P/Q (W, var) and sigmas of the branch-terminal sensors, then of one sensor per appliance.

    A branch value that is not usable is "not measured" (0 with an infinite sigma). An appliance
    without a usable meter keeps its profile value at the pseudo accuracy; a metered P without a
    usable Q gets Q at the profile's power factor (pseudo accuracy)."""
    nb = bp_p.shape[0]
    for j in range(nb):
        _branch_value(values, use, bp_p[j], relative, floor, p_meas, p_sig, j)
        _branch_value(values, use, bp_q[j], relative, floor, q_meas, q_sig, j)
    for a in range(app_p.shape[0]):
        p, q = p0[a], q0[a]
        ps, qs = _sigma(pseudo_relative, p, pseudo_floor), _sigma(pseudo_relative, q, pseudo_floor)
        kp, kq = app_p[a], app_q[a]
        metered_p = kp >= 0 and use[kp]
        if metered_p:
            p = values[kp] * conv_p[a] * share[a]
            ps = _sigma(relative, p, floor)
        if kq >= 0 and use[kq]:
            q = values[kq] * conv_q[a] * share[a]
            qs = _sigma(relative, q, floor)
        elif metered_p:
            q = p * ratio[a]
            qs = _sigma(pseudo_relative, q, pseudo_floor)
        p_meas[nb + a], q_meas[nb + a] = p * 1e6, q * 1e6
        p_sig[nb + a], q_sig[nb + a] = ps * 1e6, qs * 1e6


@njit(cache=True, inline="always")
def _add(total: float, count: int, z: float) -> tuple[float, int]:
    if math.isfinite(z):
        return total + z * z, count + 1
    return total, count


@njit(cache=True)
def objective(u_residual, u_sigma, p_residual, q_residual, p_sigma, q_sigma) -> tuple[float, int]:  # noqa: ANN001
    """``J = sum((r / sigma)^2)`` over the finite weighted residuals, and their number."""
    total, count = 0.0, 0
    for s in range(u_residual.shape[0]):
        total, count = _add(total, count, u_residual[s] / u_sigma[s])
    for s in range(p_residual.shape[0]):
        total, count = _add(total, count, p_residual[s] / p_sigma[s])
    for s in range(q_residual.shape[0]):
        total, count = _add(total, count, q_residual[s] / q_sigma[s])
    return total, count


@njit(cache=True)
def residual_table(values, v_rows, u_residual, u_sigma, bp_p, bp_q, app_p, app_q, conv_p, conv_q, share,  # noqa: ANN001, PLR0913
                   p_residual, q_residual, p_sigma, q_sigma, estimated, sigma) -> None:
    """Estimated value and sigma per plan row (point units) from the sensor residuals; rows no
    sensor covers stay as they are (NaN)."""
    for s in range(v_rows.shape[0]):
        k = v_rows[s]
        estimated[k] = values[k] - u_residual[s] / 1e3
        sigma[k] = u_sigma[s] / 1e3
    nb = bp_p.shape[0]
    for j in range(nb):
        k = bp_p[j]
        if k >= 0:
            estimated[k] = values[k] - p_residual[j] / 1e6
            sigma[k] = p_sigma[j] / 1e6
        k = bp_q[j]
        if k >= 0:
            estimated[k] = values[k] - q_residual[j] / 1e6
            sigma[k] = q_sigma[j] / 1e6
    for a in range(app_p.shape[0]):
        divisor = share[a] if share[a] > 0 else 1.0  # ZIP parts: each part's residual is its share
        k = app_p[a]
        if k >= 0:
            estimated[k] = values[k] - p_residual[nb + a] / 1e6 * conv_p[a] / divisor
            sigma[k] = p_sigma[nb + a] / 1e6 / divisor
        k = app_q[a]
        if k >= 0:
            estimated[k] = values[k] - q_residual[nb + a] / 1e6 * conv_q[a] / divisor
            sigma[k] = q_sigma[nb + a] / 1e6 / divisor
