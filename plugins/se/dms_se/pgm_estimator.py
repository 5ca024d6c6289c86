"""State estimation with power-grid-model (iterative linear or Newton-Raphson, symmetric or asymmetric).

The model is converted once (:func:`dms_pgm.convert.to_pgm`, switches as links so every
measured node exists) and a ``PowerGridModel`` is built once with one sensor per measurement
row of the :class:`~dms_se.measurements.MeasurementPlan` and one power sensor per load and
generator. Each cycle only pushes an update dataset: switch/equipment states (through
:meth:`PgmNetwork.update`) and the sensors' measured values and standard deviations.

Sensors:

* voltage magnitude -> ``sym_voltage_sensor`` (``asym_voltage_sensor``: the same magnitude on
  every phase), no angle;
* branch P and Q at one terminal -> one ``sym_power_sensor`` (``branch_from``/``branch_to``,
  ``branch3_1..3``); a missing Q (or P) gets an infinite sigma;
* current magnitude -> ``sym_current_sensor`` with a local angle: the power-factor angle of that
  terminal in the previous estimate (the first cycle: a power flow on the profile values) and a
  wide ``current_angle_sigma`` (0.2 rad) — the angle is a pseudo-measurement, as a DSO's
  |I|-only SCADA point needs. power-grid-model supports current sensors in the iterative-linear
  method only, and not on a terminal that also has a power sensor: there the P/Q sensor wins;
  Newton-Raphson runs without current magnitudes (the result says so);
* every load/generator -> ``sym_power_sensor`` on the appliance: the meter's value where one is
  usable, else the profile (nominal) value with the ``pseudo`` accuracy. Nodes without
  appliances are zero-injection nodes in power-grid-model.

An unusable measurement (bad quality, NaN, removed as bad data) gets an infinite sigma, which
power-grid-model treats as "not measured".

Bad data: the chi-squared test on ``J = sum((r_i / sigma_i)^2)`` over the measurements, with
``m + 2 z - (2n - 1)`` degrees of freedom (z zero-injection nodes, exact constraints). power-grid-model exposes residuals but not the
measurement Jacobian, so when the test fails the largest-normalised-residual identification
runs in the pandapower estimator on the same values (exact ``Omega = R - H G^-1 H^T``), and
power-grid-model estimates again without the identified measurements. A clean cycle (the
common case) never leaves power-grid-model.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from dms_pgm.convert import PgmNetwork, to_pgm
from dms_pgm.prepared import UpdateArrays
from dms_pgm.solver import output_request, results_data
from power_grid_model import (
    AngleMeasurementType,
    CalculationMethod,
    ComponentType,
    DatasetType,
    MeasuredTerminalType,
    PowerGridModel,
    initialize_array,
)
from power_grid_model.errors import PowerGridError
from scipy.stats import chi2

from dms_hookspecs import StudyResult
from dms_kernel.model import NetworkModel

from . import kernels
from .measurements import Accuracy, MeasurementPlan
from .observability import describe, islands, unobservable_islands
from .pp_estimator import nominal_powers

__all__ = ["SOLVER", "PgmEstimator", "METHODS"]

SOLVER = "power-grid-model"
STUDY = "state_estimation"
C = ComponentType
METHODS = {"iterative_linear": CalculationMethod.iterative_linear, "newton_raphson": CalculationMethod.newton_raphson}
_BRANCH_TERMINALS = {
    C.line: (MeasuredTerminalType.branch_from, MeasuredTerminalType.branch_to),
    C.link: (MeasuredTerminalType.branch_from, MeasuredTerminalType.branch_to),
    C.transformer: (MeasuredTerminalType.branch_from, MeasuredTerminalType.branch_to),
    C.three_winding_transformer: (MeasuredTerminalType.branch3_1, MeasuredTerminalType.branch3_2, MeasuredTerminalType.branch3_3),
}
_FLOW_NAMES = {C.three_winding_transformer: ("p_1", "q_1", "p_2", "q_2", "p_3", "q_3")}
_OUTPUT_BRANCH = ["p_from", "q_from", "p_to", "q_to", "i_from", "i_to", "loading"]
_PLACEHOLDER = 0.0
_APPLIANCES = (C.sym_load, C.asym_load, C.sym_gen, C.asym_gen)
_RESIDUALS = {
    C.sym_voltage_sensor: ("u_residual", "u_angle_residual"), C.asym_voltage_sensor: ("u_residual", "u_angle_residual"),
    C.sym_power_sensor: ("p_residual", "q_residual"), C.asym_power_sensor: ("p_residual", "q_residual"),
    C.sym_current_sensor: ("i_residual",), C.asym_current_sensor: ("i_residual",),
}
CURRENT_ANGLE_SIGMA = 0.2  #: rad: the pseudo power-factor angle of a current-magnitude sensor


class Unobservable(Exception):
    """The measurement set does not determine the state; the message names the part of the grid."""


class _Entry:
    """The converted network with its sensors, and the plan rows mapped onto them."""

    def __init__(self, model: NetworkModel, point_names: list[str] | None, symmetric: bool) -> None:
        self.size = len(model.objects)
        self.points_key = len(point_names) if point_names is not None else -1
        self.symmetric = symmetric
        self.lock = threading.Lock()
        self.last_update: dict[ComponentType, np.ndarray] = {}  #: the sensor update dataset of the last solve
        self.pending: dict[ComponentType, np.ndarray] = {}  #: network changes not yet pushed (go with the next sensor update)
        self.plan = plan = MeasurementPlan(model, point_names)
        net: PgmNetwork = to_pgm(model, asymmetric=not symmetric)
        self.net = net
        # a node folded into a line end (switch in series with the line) is the line-end node
        # while its switch is closed; a voltage measurement there counts only then
        folded: dict[str, tuple[int, int]] = {}
        if net.absorbed:
            lines = net.input_data[C.line]
            for position, (node, _switch, _k, line, side) in enumerate(net.absorbed):
                row = net.line_row[line.mrid]
                folded[node] = (int(lines["from_node" if side == 0 else "to_node"][row]), position)

        def node_id(mrid: str) -> tuple[int, int] | None:
            if mrid in net.node_index:
                return net.node_index[mrid], -1
            return folded.get(mrid)

        component_of = {int(i): component for component, array in net.input_data.items() for i in array["id"]}
        self.unsupported: list[str] = []
        self.names = plan.points
        self.row_sign = np.array([r.sign for r in plan.rows], dtype=float)
        # -- voltage sensors: one per v row
        located = [(k, node_id(r.target)) for k, r in enumerate(plan.rows) if r.where == "node" and r.kind == "v"]
        self.v_rows = np.array([k for k, at in located if at is not None], dtype=np.int64)
        self.v_node = np.array([at[0] for _, at in located if at is not None], dtype=np.int64)
        self.v_folded = np.array([at[1] for _, at in located if at is not None], dtype=np.int64)  #: position in net.absorbed, -1: a node of its own
        self.v_base = net.u_rated[self.v_node] if len(self.v_node) else np.zeros(0)
        for k, at in located:
            if at is None:
                self.unsupported.append(f"{plan.rows[k].point} (node not in the converted network)")
        # synchrophasor angles: the angle of the voltage sensor of the same node (a PMU measures both)
        sensor_of_node = {int(node): pos for pos, node in enumerate(self.v_node.tolist())}
        angle_rows, angle_sensor = [], []
        for k, r in enumerate(plan.rows):
            if r.where != "node" or r.kind != "va":
                continue
            at = node_id(r.target)
            if at is None or int(at[0]) not in sensor_of_node:
                self.unsupported.append(f"{r.point} (a voltage angle needs a voltage magnitude at the same node)")
                continue
            angle_rows.append(k)
            angle_sensor.append(sensor_of_node[int(at[0])])
        self.va_rows = np.array(angle_rows, dtype=np.int64)
        self.va_sensor = np.array(angle_sensor, dtype=np.int64)
        # -- branch power / current sensors
        terminals: dict[tuple[int, int], dict[str, int]] = {}
        for k, r in enumerate(plan.rows):
            if r.where != "branch":
                continue
            ids = net.element_ids.get(r.target)
            component = component_of.get(ids[0]) if ids else None
            if component not in _BRANCH_TERMINALS or r.side >= len(_BRANCH_TERMINALS[component]):
                self.unsupported.append(f"{r.point} ({r.kind} on {component.value if component else 'no element'})")
                continue
            terminals.setdefault((ids[0], r.side), {"component": component})[r.kind] = k  # type: ignore[assignment]
        power = [(key, t) for key, t in terminals.items() if "p" in t or "q" in t]
        current = [(key, t) for key, t in terminals.items() if "i" in t]
        # P/Q sensor on the same terminal wins
        self.shadowed_current = np.array([t["i"] for _, t in current if "p" in t or "q" in t], dtype=np.int64)
        current = [(key, t) for key, t in current if "p" not in t and "q" not in t]
        self.bp_p = np.array([t.get("p", -1) for _, t in power], dtype=np.int64)
        self.bp_q = np.array([t.get("q", -1) for _, t in power], dtype=np.int64)
        self.bi_rows = np.array([t["i"] for _, t in current], dtype=np.int64)
        self.bi_branch = [(key[0], key[1], t["component"]) for key, t in current]
        # -- appliances: one power sensor each (measured or pseudo)
        appliances: list[tuple[int, ComponentType, str]] = []  # (pgm id, component, mRID)
        for component in (C.sym_load, C.asym_load, C.sym_gen):
            if component in net.input_data:
                appliances += [(int(i), component, net.mrid_of[int(i)]) for i in net.input_data[component]["id"]]
        self.app_ids = np.array([a[0] for a in appliances], dtype=np.int64)
        self.app_gen = np.array([a[1] == C.sym_gen for a in appliances], dtype=bool)
        # share of a consumer's total per pgm appliance (a ZIP consumer is up to three loads)
        share = np.ones(len(appliances))
        groups: dict[str, list[int]] = {}
        for pos, (_, _, mrid) in enumerate(appliances):
            groups.setdefault(mrid, []).append(pos)
        specified = self._specified(net, appliances)
        for positions in groups.values():
            if len(positions) > 1:
                total = specified[positions].sum()
                share[positions] = specified[positions] / total if abs(total) > 0 else 1.0 / len(positions)
        self.app_share = share
        nominal = nominal_powers(model)
        sign = np.where(self.app_gen, -1.0, 1.0)  # load convention -> the appliance's own direction
        self.app_sign = sign
        p0 = np.array([nominal.get(m, (0.0, 0.0))[0] for _, _, m in appliances]) * share
        q0 = np.array([nominal.get(m, (0.0, 0.0))[1] for _, _, m in appliances]) * share
        self.app_nominal = (p0, q0)  # own direction (load: consumption, generator: generation), MW
        self.app_p = np.full(len(appliances), -1, dtype=np.int64)
        self.app_q = np.full(len(appliances), -1, dtype=np.int64)
        for k, r in enumerate(plan.rows):
            if r.where != "injection":
                continue
            positions = groups.get(r.target)
            if not positions:
                self.unsupported.append(f"{r.point} ({r.kind} of an element not in the converted network)")
                continue
            for pos in positions:
                (self.app_p if r.kind == "p" else self.app_q)[pos] = k
        self.app_terminal = np.where(self.app_gen, int(MeasuredTerminalType.generator), int(MeasuredTerminalType.load))
        # nodes without any appliance, source or shunt: exact zero-injection constraints (2 equations each)
        busy = np.zeros(len(net.node_mrids), dtype=bool)
        for component in (C.sym_load, C.asym_load, C.sym_gen, C.asym_gen, C.source, C.shunt):
            if component in net.input_data:
                busy[net.input_data[component]["node"]] = True
        self.zero_injection = int(np.count_nonzero(~busy))
        self.states = 2 * len(net.node_mrids) - 1
        self.source_names = [(model.objects[net.mrid_of[int(i)]].name or net.mrid_of[int(i)]) for i in net.input_data[C.source]["id"]]
        self._build_model(net, power, current)
        self.current_angle = self._initial_current_angles()

    @staticmethod
    def _specified(net: PgmNetwork, appliances: list[tuple[int, ComponentType, str]]) -> np.ndarray:
        out = np.zeros(len(appliances))
        for pos, (pgm_id, component, _) in enumerate(appliances):
            array = net.input_data[component]
            row = int(np.flatnonzero(array["id"] == pgm_id)[0])
            out[pos] = float(np.sum(array["p_specified"][row]))
        return out

    def _build_model(self, net: PgmNetwork, power: list, current: list) -> None:
        sym = self.symmetric
        next_id = max(int(a["id"].max()) for a in net.input_data.values() if len(a)) + 1
        data = dict(net.input_data)

        def ids(n: int) -> np.ndarray:
            nonlocal next_id
            out = np.arange(next_id, next_id + n)
            next_id += n
            return out

        vs = initialize_array(DatasetType.input, C.sym_voltage_sensor if sym else C.asym_voltage_sensor, len(self.v_rows))
        vs["id"] = ids(len(vs))
        vs["measured_object"] = self.v_node
        vs["u_sigma"] = np.inf
        vs["u_measured"] = self.v_base if sym else self.v_base[:, None] / math.sqrt(3)
        self.voltage = vs
        n_power = len(power) + len(self.app_ids)
        ps = initialize_array(DatasetType.input, C.sym_power_sensor if sym else C.asym_power_sensor, n_power)
        ps["id"] = ids(n_power)
        ps["measured_object"] = np.concatenate([np.array([key[0] for key, _ in power], dtype=np.int64), self.app_ids])
        ps["measured_terminal_type"] = np.concatenate([
            np.array([int(_BRANCH_TERMINALS[t["component"]][key[1]]) for key, t in power], dtype=np.int64), self.app_terminal,
        ])
        ps["power_sigma"] = np.nan
        ps["p_sigma"] = np.inf
        ps["q_sigma"] = np.inf
        ps["p_measured"] = _PLACEHOLDER
        ps["q_measured"] = _PLACEHOLDER
        self.power = ps
        self.n_branch_power = len(power)
        cs = initialize_array(DatasetType.input, C.sym_current_sensor if sym else C.asym_current_sensor, len(current))
        cs["id"] = ids(len(cs))
        cs["measured_object"] = [b[0] for b in self.bi_branch]
        cs["measured_terminal_type"] = [int(_BRANCH_TERMINALS[b[2]][b[1]]) for b in self.bi_branch]
        cs["angle_measurement_type"] = AngleMeasurementType.local_angle
        cs["i_sigma"] = np.inf
        cs["i_angle_sigma"] = CURRENT_ANGLE_SIGMA
        cs["i_measured"] = _PLACEHOLDER
        cs["i_angle_measured"] = _PLACEHOLDER
        self.current = cs
        for array in (vs, ps, cs):
            if len(array):
                data[_component(array)] = array
        self.sensor_types = [_component(a) for a in (vs, ps, cs) if len(a)]
        net.model = PowerGridModel(data, system_frequency=net.frequency)
        self.net._pushed = {}  # the new PowerGridModel has the input values: push everything once
        net.update()

    def _initial_current_angles(self) -> np.ndarray:
        """Power-factor angle per current sensor from a power flow on the model's present values."""
        if not len(self.bi_rows):
            return np.zeros(0)
        try:
            output = self.net.model.calculate_power_flow(symmetric=self.symmetric, output_component_types=self.branch_outputs())
        except PowerGridError:
            return np.zeros(len(self.bi_rows))
        return self.terminal_angles(output)

    def branch_outputs(self) -> dict[ComponentType, list[str]]:
        return {c: (list(_FLOW_NAMES[c]) if c in _FLOW_NAMES else ["p_from", "q_from", "p_to", "q_to"]) for c in {b[2] for b in self.bi_branch}}

    def terminal_angles(self, output: Mapping[ComponentType, Any]) -> np.ndarray:
        """``atan2(q, p)`` at each current sensor's terminal: power-grid-model's local angle is the
        voltage's angle minus the current's, the power-factor angle."""
        angles = np.zeros(len(self.bi_branch))
        for n, (pgm_id, side, component) in enumerate(self.bi_branch):
            out = output.get(component)
            if out is None:
                continue
            names = _FLOW_NAMES.get(component, ("p_from", "q_from", "p_to", "q_to"))
            position = self._row_of(component, pgm_id)
            p, q = float(np.sum(out[names[2 * side]][position])), float(np.sum(out[names[2 * side + 1]][position]))
            if math.isfinite(p) and math.isfinite(q) and (p or q):
                angles[n] = math.atan2(q, p)
        return angles

    def _row_of(self, component: ComponentType, pgm_id: int) -> int:
        cache = self.__dict__.setdefault("_rows", {})
        key = (component, pgm_id)
        if key not in cache:
            cache[key] = int(np.flatnonzero(self.net.input_data[component]["id"] == pgm_id)[0])
        return cache[key]


@functools.lru_cache(maxsize=256)
def _chi2_limit(dof: int) -> float:
    """The 99 % quantile of chi-squared with ``dof`` degrees of freedom (scipy's ppf costs ~0.1 ms)."""
    return float(chi2.ppf(0.99, dof))


def _named(accuracy: Accuracy, names: list[str], rows: np.ndarray) -> list[str] | None:
    """Point names of ``rows`` when the accuracy has per-point overrides (else None: no list built)."""
    return [names[k] for k in rows] if accuracy.points else None


def _blank(entry: _Entry, sensors: np.ndarray) -> np.ndarray:
    """The update array of the sensor input array ``sensors``, all null: the same array object on
    every call, so the update's C dataset is made once (:class:`dms_pgm.prepared.UpdateArrays`)."""
    arrays = entry.__dict__.get("_update_arrays")
    if arrays is None:
        arrays = entry.__dict__["_update_arrays"] = UpdateArrays()
    return arrays.blank(_component(sensors), sensors["id"])


def _sensor_static(entry: _Entry) -> dict[str, Any]:
    """Index arrays of the power sensor update that depend only on the measurement plan (built once per entry)."""
    fixed = entry.__dict__.get("_sensor_static")
    if fixed is not None:
        return fixed
    fixed = {"branch": [], "app": []}
    for rows_ in (entry.bp_p, entry.bp_q):
        present = rows_ >= 0
        fixed["branch"].append((rows_[present], np.flatnonzero(present)))
    for rows_ in (entry.app_p, entry.app_q):
        present = rows_ >= 0
        k = rows_[present]
        positions = np.flatnonzero(present)
        fixed["app"].append((k, positions, entry.row_sign[k] * entry.app_sign[positions], entry.app_share[positions]))
    fixed["has_p"] = entry.app_p >= 0
    fixed["no_q"] = entry.app_q < 0
    fixed["p_row"] = np.maximum(entry.app_p, 0)
    fixed["q_row"] = np.maximum(entry.app_q, 0)
    p0, q0 = entry.app_nominal
    fixed["ratio"] = np.divide(q0, p0, out=np.zeros_like(q0), where=np.abs(p0) > 1e-12)
    # per appliance: load convention -> own direction of its P and Q rows (0 without a row)
    fixed["conv"] = tuple(np.where(rows_ >= 0, entry.row_sign[np.maximum(rows_, 0)] * entry.app_sign, 0.0) for rows_ in (entry.app_p, entry.app_q))
    entry.__dict__["_sensor_static"] = fixed
    return fixed


def _compiled(entry: _Entry, accuracy: Accuracy) -> bool:
    """The compiled sensor arithmetic (:mod:`dms_se.kernels`) covers this estimate: symmetric,
    accuracies per measurement type only, no phasor angles."""
    return _COMPILED and entry.symmetric and not accuracy.points and not len(entry.va_rows)


def _compiled_residuals_apply(entry: _Entry, sigmas: Mapping[str, np.ndarray]) -> bool:
    """The compiled objective and residual table cover this estimate: symmetric, no phasor angles
    (per-point accuracies are already in ``sigmas``)."""
    return _COMPILED and entry.symmetric and "va" not in sigmas


_COMPILED = True  #: tests switch it off to compare with the numpy arithmetic
_NO_ROWS = np.zeros(0)


def _compiled_sensor_update(entry: _Entry, values: np.ndarray, use: np.ndarray, accuracy: Accuracy) -> tuple[dict, dict]:
    """:meth:`PgmEstimator._sensor_update` for :func:`_compiled` estimates."""
    update: dict[ComponentType, np.ndarray] = {}
    sigmas: dict[str, np.ndarray] = {}
    relative, floor = accuracy.relative, accuracy.floor
    if len(entry.v_rows):
        volts, sigma = np.empty(len(entry.v_rows)), np.empty(len(entry.v_rows))
        kernels.voltage_sensors(values, use, entry.v_rows, entry.v_folded, entry.net.absorbed_closed, entry.v_base,
                                relative["voltage"], floor["voltage"], volts, sigma)
        vs = _blank(entry, entry.voltage)  # the null angle is NaN: no angle measured
        vs["u_measured"], vs["u_sigma"] = volts, sigma
        update[_component(entry.voltage)] = vs
        sigmas["v"] = sigma
    if len(entry.power):
        fixed = _sensor_static(entry)
        p_meas, q_meas, p_sig, q_sig = np.empty((4, len(entry.power)))
        p0, q0 = entry.app_nominal
        conv_p, conv_q = fixed["conv"]
        kernels.power_sensors(values, use, entry.bp_p, entry.bp_q, entry.app_p, entry.app_q, conv_p, conv_q, entry.app_share,
                              p0, q0, fixed["ratio"], relative["power"], floor["power"], relative["pseudo"], floor["pseudo"],
                              p_meas, q_meas, p_sig, q_sig)
        ps = _blank(entry, entry.power)
        ps["p_measured"], ps["q_measured"], ps["p_sigma"], ps["q_sigma"] = p_meas, q_meas, p_sig, q_sig
        update[_component(entry.power)] = ps
        sigmas["p"], sigmas["q"] = p_sig, q_sig
    _current_sensors(entry, values, use, accuracy, update, sigmas)
    return update, sigmas


def _current_sensors(entry: _Entry, values: np.ndarray, use: np.ndarray, accuracy: Accuracy,
                     update: dict[ComponentType, np.ndarray], sigmas: dict[str, np.ndarray]) -> None:
    """Current magnitudes into ``update``/``sigmas``: kA -> A, pseudo angle from the last estimate."""
    if not len(entry.bi_rows):
        return
    rows = entry.bi_rows
    ok = use[rows]
    amps = np.where(ok, values[rows] * 1e3, 0.0)
    sigma = np.where(ok, accuracy.sigma("current", values[rows], _named(accuracy, entry.names, rows)) * 1e3, np.inf)
    cs = _blank(entry, entry.current)
    if entry.symmetric:
        cs["i_measured"], cs["i_sigma"], cs["i_angle_measured"] = amps, sigma, entry.current_angle
    else:
        cs["i_measured"], cs["i_sigma"] = amps[:, None], sigma
        cs["i_angle_measured"] = entry.current_angle[:, None]  # local: the same on every phase
    cs["i_angle_sigma"] = CURRENT_ANGLE_SIGMA
    update[_component(entry.current)] = cs
    sigmas["i"] = sigma


def _compiled_objective(entry: _Entry, output: Mapping[ComponentType, np.ndarray], sigmas: Mapping[str, np.ndarray]) -> tuple[float, int]:
    """:meth:`PgmEstimator._objective` of a symmetric estimate without phasor angles."""
    voltage, power = _component(entry.voltage), _component(entry.power)
    u_residual = output[voltage]["u_residual"] if "v" in sigmas and voltage in output else _NO_ROWS
    measured_power = "p" in sigmas and power in output
    p_residual = output[power]["p_residual"] if measured_power else _NO_ROWS
    q_residual = output[power]["q_residual"] if measured_power else _NO_ROWS
    total, count = kernels.objective(u_residual, sigmas.get("v", _NO_ROWS), p_residual, q_residual,
                                     sigmas.get("p", _NO_ROWS), sigmas.get("q", _NO_ROWS))
    current = _component(entry.current)
    if "i" in sigmas and current in output:
        z = np.asarray(output[current]["i_residual"], dtype=float) / sigmas["i"]
        active = np.isfinite(z)
        total += float(np.sum(z[active] ** 2))
        count += int(np.count_nonzero(active))
    return total, count


def _compiled_residuals(entry: _Entry, output: Mapping[ComponentType, np.ndarray], values: np.ndarray,
                        sigmas: Mapping[str, np.ndarray], estimated: np.ndarray, sigma: np.ndarray) -> None:
    """Voltage and power rows of :meth:`PgmEstimator._residuals` (symmetric, no phasor angles)."""
    voltage, power = _component(entry.voltage), _component(entry.power)
    has_v, has_p = "v" in sigmas and voltage in output, "p" in sigmas and power in output
    fixed = _sensor_static(entry)
    conv_p, conv_q = fixed["conv"]
    empty_rows = np.zeros(0, dtype=np.int64)
    kernels.residual_table(
        values, entry.v_rows if has_v else empty_rows,
        output[voltage]["u_residual"] if has_v else _NO_ROWS, sigmas["v"] if has_v else _NO_ROWS,
        entry.bp_p if has_p else empty_rows, entry.bp_q if has_p else empty_rows,
        entry.app_p if has_p else empty_rows, entry.app_q if has_p else empty_rows, conv_p, conv_q, entry.app_share,
        output[power]["p_residual"] if has_p else _NO_ROWS, output[power]["q_residual"] if has_p else _NO_ROWS,
        sigmas["p"] if has_p else _NO_ROWS, sigmas["q"] if has_p else _NO_ROWS, estimated, sigma,
    )


def _current_residuals(entry: _Entry, output: Mapping[ComponentType, np.ndarray], values: np.ndarray,
                       sigmas: Mapping[str, np.ndarray], estimated: np.ndarray, sigma: np.ndarray) -> None:
    if "i" in sigmas:
        out = output[_component(entry.current)]["i_residual"]
        r = out if entry.symmetric else out.mean(axis=1)
        estimated[entry.bi_rows] = values[entry.bi_rows] - r / 1e3
        sigma[entry.bi_rows] = sigmas["i"] / 1e3


def _residual_columns(entry: _Entry, values: np.ndarray, use: np.ndarray, estimated: np.ndarray, sigma: np.ndarray) -> dict[str, Any]:
    """The residual table of a result from the estimated value and sigma per plan row."""
    points, unknown, pseudo = _static_columns(entry)
    active = use & np.isfinite(sigma)
    weighted = np.where(active, (values - estimated) / np.where(active, sigma, 1.0), np.nan)
    return {
        "point": points,
        "measured": np.where(active, values, np.nan),
        "estimated": estimated,
        "sigma": np.where(active, sigma, np.nan),
        "weighted_residual": weighted,
        "normalised_residual": unknown,  # power-grid-model has no gain matrix to normalise with
        "detectability": unknown,
        "pseudo": pseudo,
    }


def _static_columns(entry: _Entry) -> tuple[tuple[str, ...], np.ndarray, tuple[bool, ...]]:
    """The residual columns that are the same in every result of ``entry``, built once and
    shared (immutable): point names, an all-NaN column (read-only), no pseudo flags."""
    columns = entry.__dict__.get("_static_columns")
    if columns is None:
        n = len(entry.names)
        unknown = np.full(n, np.nan)
        unknown.flags.writeable = False
        columns = entry.__dict__["_static_columns"] = (tuple(entry.names), unknown, (False,) * n)
    return columns


def _component(array: np.ndarray) -> ComponentType:
    names = array.dtype.names or ()
    if "u_measured" in names:
        return C.sym_voltage_sensor if array["u_measured"].ndim == 1 else C.asym_voltage_sensor
    if "i_measured" in names:
        return C.sym_current_sensor if array["i_measured"].ndim == 1 else C.asym_current_sensor
    return C.sym_power_sensor if array["p_measured"].ndim == 1 else C.asym_power_sensor


class PgmEstimator:
    """State estimation with power-grid-model; one instance per plugin (thread-safe).

    :param identify: ``(model, values, usable, point_names, accuracy, options) -> StudyResult`` of
        an estimator with largest-normalised-residual identification (the pandapower one), used
        when the chi-squared test fails.
    """

    def __init__(self, identify: Any = None) -> None:
        self._cache: weakref.WeakKeyDictionary[NetworkModel, dict[bool, _Entry]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.identify = identify

    def entry(self, model: NetworkModel, point_names: list[str] | None, symmetric: bool = True) -> _Entry:
        key = len(point_names) if point_names is not None else -1
        with self._lock:
            per_model = self._cache.setdefault(model, {})
            entry = per_model.get(symmetric)
            if entry is None or entry.size != len(model.objects) or entry.points_key != key:
                entry = per_model[symmetric] = _Entry(model, point_names, symmetric)
            return entry

    def run(self, model: NetworkModel, values: np.ndarray | None, usable: np.ndarray | None, point_names: list[str] | None,
            accuracy: Accuracy, options: Mapping[str, Any]) -> StudyResult:
        started = time.time()
        symmetric = not bool(options.get("unbalanced", False))
        method_name = str(options.get("calculation_method", "auto"))
        if method_name != "auto" and method_name not in METHODS:
            raise ValueError(f"state_estimation: unknown calculation_method {method_name!r} (known: auto, {', '.join(METHODS)})")
        entry = self.entry(model, point_names, symmetric)
        with entry.lock:
            if method_name == "auto":  # Newton-Raphson (exact WLS) unless current magnitudes need iterative linear
                currents = len(entry.bi_rows) and usable is not None and bool(usable[entry.bi_rows].any())
                method_name = "iterative_linear" if currents else "newton_raphson"
            # the network's changes go to power-grid-model with the first sensor update (one call)
            entry.pending = entry.net.update(model, skip=_APPLIANCES, push=False)
            if values is None or usable is None:
                values, usable = np.zeros(len(entry.plan.rows)), np.zeros(len(entry.plan.rows), dtype=bool)
            try:
                data, message = self._estimate(model, entry, values, usable, point_names, accuracy, options, method_name)
            except Unobservable as exc:
                return StudyResult(STUDY, SOLVER, False, {"unobservable": True}, f"not observable: {exc}", started, time.time())
            except PowerGridError as exc:
                return StudyResult(STUDY, SOLVER, False, {}, f"power-grid-model {method_name} estimation failed: {type(exc).__name__}: {exc}", started, time.time())
            finally:
                if entry.pending:  # not solved (e.g. unobservable): the model must still get the changes
                    entry.net.push(entry.pending)
                    entry.pending = {}
        return StudyResult(STUDY, SOLVER, True, data, message, started, time.time())

    # -- one estimate ----------------------------------------------------------------------

    def _estimate(self, model: NetworkModel, entry: _Entry, values: np.ndarray, usable: np.ndarray, point_names: list[str] | None,
                  accuracy: Accuracy, options: Mapping[str, Any], method_name: str) -> tuple[dict[str, Any], str]:
        method = METHODS[method_name]
        use = usable.copy()
        if len(entry.shadowed_current):
            use[entry.shadowed_current] = False
        if method_name == "newton_raphson" and len(entry.bi_rows):
            use[entry.bi_rows] = False  # power-grid-model: no current sensors in Newton-Raphson
        self._observability(entry, use)
        bad_data: list[dict[str, Any]] = []
        allowed = self.identify is not None and int(options.get("max_bad_data", 5)) > 0
        try:
            output, J, m, sigmas = self._solve(entry, values, use, accuracy, options, method)
            detected = J > self._limit(entry, m)[1]
        except PowerGridError:
            if not allowed:
                raise
            output, detected = None, True  # a gross error can make the iteration diverge: identify, then retry
        if detected and allowed:
            found = self.identify(model, values, use, point_names, accuracy, options)
            if found.converged and found.data.get("suspect"):
                bad_data = list(found.data["bad_data"])
                index = {name: k for k, name in enumerate(entry.names)}
                for point in found.data["suspect"]:
                    if point in index:
                        use[index[point]] = False
                output = None
            if output is None:
                try:
                    output, J, m, sigmas = self._solve(entry, values, use, accuracy, options, method)
                except PowerGridError as exc:
                    if not found.converged:
                        raise
                    # power-grid-model cannot estimate without the identified points (e.g. they were
                    # the only voltage reference of a part): the identifying estimate stands
                    data = dict(found.data)
                    data["calculation_method"] = f"pandapower (power-grid-model {method_name} failed)"
                    return data, f"{found.message}; power-grid-model {method_name} failed without the suspect points ({type(exc).__name__}), pandapower's estimate used"
        dof, limit = self._limit(entry, m)
        if len(entry.bi_rows):
            entry.current_angle = entry.terminal_angles(output)
        data = results_data(entry.net, output)
        residuals = self._residuals(entry, output, values, use, sigmas)
        suspect = [p for entry_ in bad_data for p in entry_["points"]]
        n_meas = int(np.count_nonzero(use))
        data.update(
            residuals=residuals,
            suspect=suspect,
            bad_data=bad_data,
            chi2={"J": J, "dof": dof, "threshold_99": limit, "bad_data_detected": bool(detected)},
            measurements=n_meas,
            pseudo=len(entry.app_p) - int(np.count_nonzero(use[_sensor_static(entry)["p_row"]] & (entry.app_p >= 0))),
            unsupported=list(entry.unsupported),
            calculation_method=method_name,
        )
        ignored = ""
        if method_name == "newton_raphson" and len(entry.bi_rows):
            ignored = f"; {len(entry.bi_rows)} current magnitudes not used (power-grid-model's Newton-Raphson has no current sensors)"
        message = (
            f"power-grid-model {method_name} estimate with {n_meas} measurements and {data['pseudo']} pseudo-measured "
            f"appliances, J = {J:.1f} (chi2 99 % limit {limit:.1f}, dof {dof}); {len(suspect)} bad data removed{ignored}"
        )
        return data, message

    @staticmethod
    def _limit(entry: _Entry, m: int) -> tuple[int, float]:
        """Degrees of freedom and the chi-squared 99 % limit for ``m`` measurement scalars."""
        dof = max(m + 2 * entry.zero_injection - entry.states, 1)
        return dof, _chi2_limit(dof)

    def _solve(self, entry: _Entry, values: np.ndarray, use: np.ndarray, accuracy: Accuracy, options: Mapping[str, Any],
               method: CalculationMethod) -> tuple[dict[ComponentType, np.ndarray], float, int, dict[str, np.ndarray]]:
        update, sigmas = self._sensor_update(entry, values, use, accuracy)
        outputs: dict[ComponentType, Any] = {C.node: ["u_pu", "u_angle", "energized"]}
        for component in (C.line, C.link, C.transformer):
            if component in entry.net.input_data:
                outputs[component] = list(_OUTPUT_BRANCH)
        if C.three_winding_transformer in entry.net.input_data:
            outputs[C.three_winding_transformer] = ["p_1", "q_1", "p_2", "q_2", "p_3", "q_3", "i_1", "i_2", "i_3", "loading"]
        for component in entry.sensor_types:
            outputs[component] = list(_RESIDUALS[component])
        if entry.pending:
            update = {**entry.pending, **update}
            entry.pending = {}
        entry.net.push(update)  # the sensors keep these values: a permanent update, no batch
        entry.last_update = update
        output = entry.net.prepared(
            state_estimation=True,
            calculation_method=method,
            error_tolerance=float(options.get("tolerance", 1e-8)),
            max_iterations=int(options.get("max_iteration", 50)),
            output_component_types=output_request(outputs, len(entry.net.node_mrids)),
        ).run()  # the same output arrays every run (read within this estimate)
        J, m = self._objective(entry, output, sigmas)
        return output, J, m, sigmas

    def _sensor_update(self, entry: _Entry, values: np.ndarray, use: np.ndarray, accuracy: Accuracy) -> tuple[dict, dict]:
        if _compiled(entry, accuracy):
            return _compiled_sensor_update(entry, values, use, accuracy)
        sym = entry.symmetric
        names = entry.names
        sigmas: dict[str, np.ndarray] = {}
        update: dict[ComponentType, np.ndarray] = {}
        # voltages: kV ph-ph -> V (ph-ph symmetric, ph-n per phase asymmetric)
        if len(entry.v_rows):
            rows = entry.v_rows
            ok = use[rows]
            folded = entry.v_folded >= 0
            if folded.any():  # behind an open series switch the node is not the line-end node
                ok = ok & (~folded | entry.net.absorbed_closed[np.maximum(entry.v_folded, 0)])
            volts = np.where(ok, values[rows] * 1e3, entry.v_base)
            sigma_pu = accuracy.sigma("voltage", volts / entry.v_base, _named(accuracy, names, rows))
            sigma = np.where(ok, sigma_pu * entry.v_base, np.inf)
            angle = np.full(len(rows), np.nan)
            if len(entry.va_rows):  # a usable PMU angle makes the sensor a phasor (with the phasor accuracy)
                with_angle = use[entry.va_rows] & ok[entry.va_sensor]
                positions = entry.va_sensor[with_angle]
                angle[positions] = np.radians(values[entry.va_rows[with_angle]])
                phasor = np.maximum(accuracy.relative["phasor"], accuracy.floor["phasor"]) * entry.v_base[positions]
                sigma[positions] = np.minimum(sigma[positions], phasor)
                sigmas["va"] = sigma.copy()
            vs = _blank(entry, entry.voltage)
            if sym:
                vs["u_measured"], vs["u_sigma"], vs["u_angle_measured"] = volts, sigma, angle
            else:
                shifts = np.array([0.0, -2 * math.pi / 3, 2 * math.pi / 3])
                vs["u_measured"], vs["u_sigma"] = (volts / math.sqrt(3))[:, None], sigma / math.sqrt(3)
                vs["u_angle_measured"] = angle[:, None] + shifts[None, :]
            update[_component(entry.voltage)] = vs
            sigmas["v"] = sigma
        # power sensors: branch terminals, then appliances (W, var)
        fixed = _sensor_static(entry)
        n_b = entry.n_branch_power
        p_meas = np.zeros(len(entry.power))
        q_meas = np.zeros(len(entry.power))
        p_sig = np.full(len(entry.power), np.inf)
        q_sig = np.full(len(entry.power), np.inf)
        for (k, positions), meas, sig in zip(fixed["branch"], (p_meas, q_meas), (p_sig, q_sig), strict=True):
            ok = use[k]
            pos = positions[ok]
            v = values[k[ok]]
            meas[pos] = v * 1e6
            sig[pos] = accuracy.sigma("power", v, _named(accuracy, names, k[ok])) * 1e6
        if len(entry.app_ids):
            p0, q0 = entry.app_nominal
            rel, floor = accuracy.relative["pseudo"], accuracy.floor["pseudo"]
            p_app, q_app = p0.copy(), q0.copy()
            pseudo_sigma = fixed.get("pseudo_sigma")
            if pseudo_sigma is None or pseudo_sigma[0] != (rel, floor):
                pseudo_sigma = fixed["pseudo_sigma"] = ((rel, floor), np.maximum(rel * np.abs(p0), floor), np.maximum(rel * np.abs(q0), floor))
            p_sig_app, q_sig_app = pseudo_sigma[1].copy(), pseudo_sigma[2].copy()
            for (k, positions, conv, share), target, sig in zip(fixed["app"], (p_app, q_app), (p_sig_app, q_sig_app), strict=True):
                ok = use[k]
                pos = positions[ok]
                # load convention -> own direction (conv = row sign x appliance sign, both ±1: exact)
                measured = values[k[ok]] * conv[ok] * share[ok]
                target[pos] = measured
                sig[pos] = accuracy.sigma("power", measured, _named(accuracy, names, k[ok]))
            # a metered P without Q: Q at the profile's power factor (pseudo accuracy)
            p_only = fixed["has_p"] & (fixed["no_q"] | ~use[fixed["q_row"]])
            p_only &= use[fixed["p_row"]]
            q_app[p_only] = p_app[p_only] * fixed["ratio"][p_only]
            q_sig_app[p_only] = np.maximum(rel * np.abs(q_app[p_only]), floor)
            p_meas[n_b:], q_meas[n_b:] = p_app * 1e6, q_app * 1e6
            p_sig[n_b:], q_sig[n_b:] = p_sig_app * 1e6, q_sig_app * 1e6
        if len(entry.power):
            ps = _blank(entry, entry.power)
            if sym:
                ps["p_measured"], ps["q_measured"], ps["p_sigma"], ps["q_sigma"] = p_meas, q_meas, p_sig, q_sig
            else:
                ps["p_measured"], ps["q_measured"] = (p_meas / 3)[:, None], (q_meas / 3)[:, None]
                ps["p_sigma"], ps["q_sigma"] = (p_sig / 3)[:, None], (q_sig / 3)[:, None]
            update[_component(entry.power)] = ps
            sigmas["p"], sigmas["q"] = p_sig, q_sig
        _current_sensors(entry, values, use, accuracy, update, sigmas)
        return update, sigmas

    @staticmethod
    def _objective(entry: _Entry, output: Mapping[ComponentType, np.ndarray], sigmas: Mapping[str, np.ndarray]) -> tuple[float, int]:
        """``J = sum((r / sigma)^2)`` over the active measurement scalars, and their number."""
        if _compiled_residuals_apply(entry, sigmas):
            return _compiled_objective(entry, output, sigmas)
        terms: list[np.ndarray] = []
        for key, component, column in (("v", _component(entry.voltage), "u_residual"), ("i", _component(entry.current), "i_residual")):
            if key in sigmas and component in output:
                residual = np.asarray(output[component][column], dtype=float)
                residual = residual if residual.ndim == 1 else residual.sum(axis=1) / residual.shape[1]
                scale = 1.0 if entry.symmetric or key == "i" else math.sqrt(3)
                terms.append(residual * scale / sigmas[key])
        if "va" in sigmas and len(entry.va_rows):
            residual = np.asarray(output[_component(entry.voltage)]["u_angle_residual"], dtype=float)
            residual = residual if residual.ndim == 1 else residual.mean(axis=1)
            positions = entry.va_sensor
            terms.append(residual[positions] / (sigmas["va"][positions] / entry.v_base[positions]))  # rad / (sigma/|U|)
        if "p" in sigmas and _component(entry.power) in output:
            out = output[_component(entry.power)]
            for column, key in (("p_residual", "p"), ("q_residual", "q")):
                residual = np.asarray(out[column], dtype=float)
                residual = residual if residual.ndim == 1 else residual.sum(axis=1)
                terms.append(residual / sigmas[key])
        z = np.concatenate(terms) if terms else np.zeros(0)
        active = np.isfinite(z)
        return float(np.sum(z[active] ** 2)), int(np.count_nonzero(active))

    def _residuals(self, entry: _Entry, output: Mapping[ComponentType, np.ndarray], values: np.ndarray, use: np.ndarray,
                   sigmas: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Per measurement row (point units: kV, MW, Mvar, kA): measured, estimated, sigma, weighted residual."""
        n = len(entry.plan.rows)
        estimated = np.full(n, np.nan)
        sigma = np.full(n, np.nan)
        if _compiled_residuals_apply(entry, sigmas):
            _compiled_residuals(entry, output, values, sigmas, estimated, sigma)
            _current_residuals(entry, output, values, sigmas, estimated, sigma)
            return _residual_columns(entry, values, use, estimated, sigma)
        if "v" in sigmas:
            out = output[_component(entry.voltage)]["u_residual"]
            r = out if entry.symmetric else out.mean(axis=1) * math.sqrt(3)
            estimated[entry.v_rows] = values[entry.v_rows] - r / 1e3
            sigma[entry.v_rows] = sigmas["v"] / 1e3
        if "p" in sigmas:
            out = output[_component(entry.power)]
            pr = out["p_residual"] if entry.symmetric else out["p_residual"].sum(axis=1)
            qr = out["q_residual"] if entry.symmetric else out["q_residual"].sum(axis=1)
            nb = entry.n_branch_power
            for rows_, r, sig in ((entry.bp_p, pr[:nb], sigmas["p"][:nb]), (entry.bp_q, qr[:nb], sigmas["q"][:nb])):
                present = rows_ >= 0
                k = rows_[present]
                estimated[k] = values[k] - r[present] / 1e6
                sigma[k] = sig[present] / 1e6
            for rows_, r, sig in ((entry.app_p, pr[nb:], sigmas["p"][nb:]), (entry.app_q, qr[nb:], sigmas["q"][nb:])):
                present = rows_ >= 0
                k = rows_[present]
                conv = entry.row_sign[k] * entry.app_sign[present]
                # ZIP parts: the residual of each part is its share of the consumer's
                estimated[k] = values[k] - r[present] / 1e6 * conv / np.where(entry.app_share[present] > 0, entry.app_share[present], 1.0)
                sigma[k] = sig[present] / 1e6 / np.where(entry.app_share[present] > 0, entry.app_share[present], 1.0)
        if "va" in sigmas and len(entry.va_rows):
            out = output[_component(entry.voltage)]["u_angle_residual"]
            r = out if entry.symmetric else out.mean(axis=1)
            positions = entry.va_sensor
            estimated[entry.va_rows] = values[entry.va_rows] - np.degrees(r[positions])
            sigma[entry.va_rows] = np.degrees(sigmas["va"][positions] / entry.v_base[positions])
        _current_residuals(entry, output, values, sigmas, estimated, sigma)
        return _residual_columns(entry, values, use, estimated, sigma)

    # -- observability ---------------------------------------------------------------------

    @staticmethod
    def _observability(entry: _Entry, use: np.ndarray) -> None:
        """Every energised island (with a source) needs a voltage magnitude measurement.

        The answer is kept for the last branch statuses and set of usable voltage measurements:
        a cycle that changes neither costs a comparison of two byte strings."""
        net = entry.net
        key = b"".join(a.tobytes() for c in (C.line, C.link, C.transformer) if c in net.input_data for a in entry_status(net, c))
        key += use[entry.v_rows].tobytes() if len(entry.v_rows) else b""
        cached = entry.__dict__.get("_observable")
        if cached is not None and cached[0] == key:
            if cached[1]:
                raise Unobservable(cached[1])
            return
        try:
            PgmEstimator._check_observability(entry, use)
        except Unobservable as exc:
            entry.__dict__["_observable"] = (key, str(exc))
            raise
        entry.__dict__["_observable"] = (key, "")

    @staticmethod
    def _check_observability(entry: _Entry, use: np.ndarray) -> None:
        net = entry.net
        n = len(net.node_mrids)
        a, b = [], []
        for component in (C.line, C.link, C.transformer):
            array = net.input_data.get(component)
            if array is None or not len(array):
                continue
            status_from, status_to = entry_status(net, component)
            on = (status_from & status_to).astype(bool)
            a.append(array["from_node"][on]); b.append(array["to_node"][on])
        if C.three_winding_transformer in net.input_data:
            t3 = net.input_data[C.three_winding_transformer]
            for other in ("node_2", "node_3"):
                a.append(t3["node_1"]); b.append(t3[other])
        labels = islands(n, np.concatenate(a) if a else np.zeros(0, int), np.concatenate(b) if b else np.zeros(0, int))
        sources = net.input_data[C.source]
        source_nodes = sources["node"]
        v_nodes = entry.v_node[use[entry.v_rows]] if len(entry.v_rows) else np.zeros(0, int)
        missing = unobservable_islands(labels, source_nodes, v_nodes)
        if missing:
            parts = []
            for nodes in missing:
                names = [net.node_names[i] for i in nodes.tolist()]
                feeding = [name for name, node in zip(entry.source_names, source_nodes, strict=True) if labels[node] == labels[nodes[0]]]
                parts.append(f"no voltage measurement in the island fed by {', '.join(feeding)}: buses {describe(names)}")
            raise Unobservable("; ".join(parts))


def entry_status(net: PgmNetwork, component: ComponentType) -> tuple[np.ndarray, np.ndarray]:
    """from/to status of a branch component as last pushed (input values before the first push)."""
    pushed = net._pushed.get(component)
    array = net.input_data[component]
    if pushed and "from_status" in pushed:
        return np.asarray(pushed["from_status"]), np.asarray(pushed["to_status"])
    return array["from_status"], array["to_status"]
