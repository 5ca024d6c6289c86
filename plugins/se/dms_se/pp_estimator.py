"""Weighted-least-squares state estimation with pandapower, with bad-data processing.

The model is converted once (:func:`dms_pandapower.to_pandapower`, cached per model) and
updated per cycle. Each cycle builds ``net.measurement`` from the snapshot (vectorised, one
row per measurement; injections aggregated per bus in load convention, measured elements with
their accuracy, unmeasured ones as pseudo-measurements from the model with the ``pseudo``
accuracy), checks observability, and runs pandapower's WLS formulation (its ``pp2eppci``
measurement model and ``BaseAlgebra`` Jacobians) in a loop of our own that keeps the matrices
sparse. Bad data: the chi-squared test on the objective and the largest normalised residual
``|r_i| / sqrt(Omega_ii)``, ``Omega = R - H G^-1 H^T``, computed with a sparse LU of the gain
matrix; the largest one above ``rn_threshold`` is removed (an injection measurement falls back
to its pseudo value) and the estimate repeated, up to ``max_bad_data`` times.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
import weakref
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from dms_pandapower.convert import PandapowerNetwork, to_pandapower
from dms_pandapower.results import ResultLayout, balanced_result
from pandapower.estimation.algorithm.matrix_base import BaseAlgebra
from pandapower.estimation.ppc_conversion import pp2eppci
from pandapower.estimation.results import eppci2pp
from scipy.sparse import csr_matrix, diags
from scipy.sparse.linalg import splu
from scipy.stats import chi2

from dms_hookspecs import StudyResult
from dms_kernel.model import NetworkModel

from .measurements import Accuracy, MeasurementPlan
from .observability import describe, islands, unobservable_islands

__all__ = ["SOLVER", "PandapowerEstimator"]

SOLVER = "pandapower"
STUDY = "state_estimation"
_SIDES = {"line": ("from", "to"), "trafo": ("hv", "lv"), "trafo3w": ("hv", "mv", "lv")}
logging.getLogger("pandapower.estimation").setLevel(logging.ERROR)


_nominal: weakref.WeakKeyDictionary[NetworkModel, dict[str, tuple[float, float]]] = weakref.WeakKeyDictionary()


def nominal_powers(model: NetworkModel, capture: bool = False) -> dict[str, tuple[float, float]]:
    """Profile ``(p, q)`` per load/generator mRID, captured once (at startup, before live values)."""
    from dms_kernel.model import EnergyConsumer, PowerElectronicsConnection, SynchronousMachine

    values = _nominal.get(model)
    if values is None or capture:
        values = _nominal[model] = {
            e.mrid: (e.p_mw, e.q_mvar) for cls in (EnergyConsumer, PowerElectronicsConnection, SynchronousMachine) for e in model.of_type(cls)
        }
    return values


class Unobservable(Exception):
    """The measurement set does not determine the state; the message names the buses."""


class _Entry:
    """A converted net, the measurement plan mapped onto it, and the result layout."""

    def __init__(self, model: NetworkModel, point_names: list[str] | None) -> None:
        self.network: PandapowerNetwork = to_pandapower(model)
        self.size = len(model.objects)
        self.lock = threading.Lock()
        self.plan = MeasurementPlan(model, point_names)
        self.points_key = len(point_names) if point_names is not None else -1
        network, net = self.network, self.network.net
        self.bus_names = [str(n) for n in net.bus.name.tolist()]
        self.vn_kv = net.bus.vn_kv.to_numpy(dtype=float)
        self.layout = ResultLayout(network)
        # map the plan's rows onto the net
        self.v_rows: list[tuple[int, int]] = []  # (plan row, bus)
        self.va_rows: list[tuple[int, int]] = []  # (plan row, bus): PMU voltage angles (degrees)
        self.branch_rows: list[tuple[int, str, str, int, str]] = []  # (row, kind, table, index, side)
        self.injection_rows: list[tuple[int, str, str, int]] = []  # (row, kind, table, index)
        self.unsupported: list[str] = []
        for k, row in enumerate(self.plan.rows):
            if row.where == "node":
                (self.va_rows if row.kind == "va" else self.v_rows).append((k, network.bus_of[row.target]))
                continue
            location = network.element_index.get(row.target)
            if location is None:
                self.unsupported.append(f"{row.point} (not in the converted net)")
                continue
            table, index = location
            if row.where == "branch" and table in _SIDES and row.side < len(_SIDES[table]):
                self.branch_rows.append((k, row.kind, table, index, _SIDES[table][row.side]))
            elif row.where == "injection" and table in ("load", "sgen", "storage"):
                self.injection_rows.append((k, row.kind, table, index))
            else:
                self.unsupported.append(f"{row.point} ({row.kind} on {table})")
        self.v_plan = np.array([k for k, _ in self.v_rows], dtype=int)
        nominal = nominal_powers(model)
        #: q/p of each injection row at its profile values (NaN: no profile P)
        self.q_ratio = {}
        for table in ("load", "sgen", "storage"):
            mrids = network._rows.get(table, [])
            ratio = np.full(len(net[table]), np.nan)
            for pos, mrid in enumerate(mrids):
                p, q = nominal.get(mrid, (0.0, 0.0))
                if abs(p) > 1e-12:
                    ratio[pos] = q / p
            self.q_ratio[table] = ratio
        self.v_bus = np.array([b for _, b in self.v_rows], dtype=int)

    # -- per cycle --------------------------------------------------------------------------

    def injections(self, values: np.ndarray, usable: np.ndarray, accuracy: Accuracy, dropped: set[int]):
        """Per-bus P/Q injections (load convention) with variances and the measured points in them."""
        net = self.network.net
        frames = []
        for table, sign in (("load", 1.0), ("sgen", -1.0), ("storage", 1.0)):
            df = net[table]
            if len(df):
                frames.append((table, sign, df))
        bus_p: dict[int, float] = defaultdict(float)
        bus_q: dict[int, float] = defaultdict(float)
        var_p: dict[int, float] = defaultdict(float)
        var_q: dict[int, float] = defaultdict(float)
        points_p: dict[int, list[tuple[int, str]]] = defaultdict(list)
        points_q: dict[int, list[tuple[int, str]]] = defaultdict(list)
        measured: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
        for k, kind, table, index in self.injection_rows:
            if usable[k] and k not in dropped:
                measured[(table, index)][kind] = k
        pseudo_rel, pseudo_floor = accuracy.relative["pseudo"], accuracy.floor["pseudo"]
        names = self.plan.points
        for table, sign, df in frames:
            buses = df.bus.to_numpy(dtype=int)
            p0 = sign * df.p_mw.to_numpy(dtype=float)
            q0 = sign * df.q_mvar.to_numpy(dtype=float)
            service = df.in_service.to_numpy(dtype=bool)
            rows = df.index.to_numpy()
            for pos in np.flatnonzero(service).tolist():
                bus, p, q = int(buses[pos]), float(p0[pos]), float(q0[pos])
                m = measured.get((table, int(rows[pos])), {})
                if "p" in m:
                    k = m["p"]
                    p_meas = float(values[k]) * self.plan.rows[k].sign
                    ratio = self.q_ratio[table][pos]
                    if "q" not in m and not math.isnan(ratio):
                        q = p_meas * ratio  # unmeasured Q at the profile's power factor
                    p = p_meas
                    var_p[bus] += float(accuracy.sigma("power", np.array([p]), [names[k]])[0]) ** 2
                    points_p[bus].append((k, names[k]))
                else:
                    var_p[bus] += max(pseudo_rel * abs(p), pseudo_floor) ** 2
                if "q" in m:
                    k = m["q"]
                    q = float(values[k]) * self.plan.rows[k].sign
                    var_q[bus] += float(accuracy.sigma("power", np.array([q]), [names[k]])[0]) ** 2
                    points_q[bus].append((k, names[k]))
                else:
                    var_q[bus] += max(pseudo_rel * abs(q), pseudo_floor) ** 2
                bus_p[bus] += p
                bus_q[bus] += q
        return bus_p, bus_q, var_p, var_q, points_p, points_q


def _wls(eppci: Any, tolerance: float, max_iterations: int) -> tuple[bool, int, Any]:
    """Gauss-Newton WLS on pandapower's extended ppci (sparse throughout)."""
    sem = BaseAlgebra(eppci)
    eppci.r_cov[eppci.r_cov < 1e-5] = 1e-5
    weights = 1.0 / eppci.r_cov**2
    E = eppci.E
    error, iteration = 100.0, 0
    while error > tolerance and iteration < max_iterations:
        r = sem.create_rx(E)
        H = csr_matrix(sem.create_hx_jacobian(E))
        w = weights
        if iteration == 0 and eppci.any_i_meas:  # current magnitudes have no derivative at flat start
            keep = eppci.idx_non_imeas
            H, r, w = H[keep], r[keep], w[keep]
        G = (H.T @ diags(w) @ H).tocsc()
        try:
            lu = splu(G)
        except RuntimeError as exc:  # exactly singular
            raise Unobservable(str(exc)) from None
        d = lu.solve(H.T @ (w * r))
        if not np.all(np.isfinite(d)):
            raise Unobservable("singular gain matrix")
        error = float(np.max(np.abs(d))) if d.size else 0.0
        if error > 0.35:
            d *= 0.35 / error
        E = E + d
        eppci.update_E(E)
        iteration += 1
    return error <= tolerance, iteration, sem


def _normalised(eppci: Any, sem: Any, candidates: np.ndarray, full_limit: int = 500) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Weighted residuals, normalised residuals (NaN where not computed or critical), J and the
    detectability ``sqrt(Omega_ii) / sigma_i`` (0: critical measurement, 1: fully redundant)."""
    E = eppci.E
    r = sem.create_rx(E)
    sigma = eppci.r_cov
    weighted = r / sigma
    J = float(np.sum(weighted**2))
    H = csr_matrix(sem.create_hx_jacobian(E))
    w = 1.0 / sigma**2
    lu = splu((H.T @ diags(w) @ H).tocsc())
    rn = np.full(len(r), np.nan)
    detect = np.full(len(r), np.nan)
    rows = candidates
    if len(rows) > full_limit:  # large systems: the largest weighted residuals only
        rows = rows[np.argsort(-np.abs(weighted[rows]))[:200]]
    if len(rows):
        Hk = H[rows].toarray()
        X = lu.solve(Hk.T.copy())
        omega = sigma[rows] ** 2 - np.einsum("ij,ji->i", Hk, X)
        ok = omega > 1e-6 * sigma[rows] ** 2  # else critical: the residual is always ~0
        rn[rows[ok]] = np.abs(r[rows[ok]]) / np.sqrt(omega[ok])
        detect[rows] = np.sqrt(np.clip(omega, 0.0, None)) / sigma[rows]
    return weighted, rn, J, detect


class PandapowerEstimator:
    """State estimation with pandapower's WLS; one instance per plugin (thread-safe)."""

    def __init__(self) -> None:
        self._cache: weakref.WeakKeyDictionary[NetworkModel, _Entry] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def entry(self, model: NetworkModel, point_names: list[str] | None) -> _Entry:
        key = len(point_names) if point_names is not None else -1
        with self._lock:
            entry = self._cache.get(model)
            if entry is None or entry.size != len(model.objects) or entry.points_key != key:
                entry = self._cache[model] = _Entry(model, point_names)
            return entry

    def run(self, model: NetworkModel, values: np.ndarray | None, usable: np.ndarray | None, point_names: list[str] | None,
            accuracy: Accuracy, options: Mapping[str, Any]) -> StudyResult:
        started = time.time()
        entry = self.entry(model, point_names)
        with entry.lock:
            entry.network.update(model)
            plan = entry.plan
            if values is None:
                values, usable = np.zeros(len(plan.rows)), np.zeros(len(plan.rows), dtype=bool)
            try:
                data, message = self._estimate(entry, values, usable, accuracy, options)
            except Unobservable as exc:
                return StudyResult(STUDY, SOLVER, False, {"unobservable": True}, f"not observable: {exc}", started, time.time())
        return StudyResult(STUDY, SOLVER, True, data, message, started, time.time())

    def _observability(self, entry: _Entry, v_usable: np.ndarray) -> None:
        net = entry.network.net
        n = len(net.bus)
        position = pd.Series(np.arange(n), index=net.bus.index)
        a, b = [], []
        line = net.line[net.line.in_service.to_numpy(dtype=bool)]
        a.append(position[line.from_bus].to_numpy()); b.append(position[line.to_bus].to_numpy())
        trafo = net.trafo[net.trafo.in_service.to_numpy(dtype=bool)]
        a.append(position[trafo.hv_bus].to_numpy()); b.append(position[trafo.lv_bus].to_numpy())
        if len(net.trafo3w):
            t3 = net.trafo3w[net.trafo3w.in_service.to_numpy(dtype=bool)]
            for other in ("mv_bus", "lv_bus"):
                a.append(position[t3.hv_bus].to_numpy()); b.append(position[t3[other]].to_numpy())
        sw = net.switch[(net.switch.et == "b") & net.switch.closed.to_numpy(dtype=bool)]
        a.append(position[sw.bus].to_numpy()); b.append(position[sw.element.astype(int)].to_numpy())
        labels = islands(n, np.concatenate(a), np.concatenate(b))
        ext = net.ext_grid[net.ext_grid.in_service.to_numpy(dtype=bool)]
        sources = position[ext.bus].to_numpy()
        vbuses = position[entry.v_bus[v_usable]].to_numpy() if v_usable.any() else np.zeros(0, int)
        missing = unobservable_islands(labels, sources, vbuses)
        if missing:
            parts = []
            for buses in missing:
                names = [entry.bus_names[i] for i in buses.tolist()]
                src = [str(nm) for nm, bus in zip(ext.name.tolist(), sources.tolist(), strict=True) if labels[bus] == labels[buses[0]]]
                parts.append(f"no voltage measurement in the island fed by {', '.join(src)}: buses {describe(names)}")
            raise Unobservable("; ".join(parts))

    def _estimate(self, entry: _Entry, values: np.ndarray, usable: np.ndarray, accuracy: Accuracy,
                  options: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        net = entry.network.net
        plan = entry.plan
        names = plan.points
        threshold = float(options.get("rn_threshold", 4.0))
        max_bad = int(options.get("max_bad_data", 5))
        tolerance = float(options.get("tolerance", 1e-6))
        max_iterations = int(options.get("max_iteration", 50))
        v_usable = usable[entry.v_plan] if len(entry.v_plan) else np.zeros(0, dtype=bool)
        self._observability(entry, v_usable)
        dropped: set[int] = set()
        suspect: list[dict[str, Any]] = []
        iterations = 0
        last = None
        probe: list[int] | None = None
        normalised_for: tuple[Any, Any, np.ndarray] | None = None
        while True:
            table, owners = self._measurements(entry, values, usable, accuracy, dropped)
            net.measurement = table
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pandas SettingWithCopyWarning inside pandapower
                _, ppc, eppci = pp2eppci(net, v_start="flat", delta_start="flat", calculate_voltage_angles=True,
                                         zero_injection=self._zero_injection(entry))
            try:
                ok, its, sem = _wls(eppci, tolerance, max_iterations)
                failure = None if ok else f"WLS did not converge in {max_iterations} iterations"
            except Unobservable:
                failure = self._unmeasured_buses(entry, table)
            current_rows = [k for k, kind, *_ in entry.branch_rows if kind == "i" and usable[k] and k not in dropped]
            if failure is not None and last is None and current_rows and probe is None:
                # a gross error on a current magnitude can stall Gauss-Newton (|I| is not monotonic in
                # the state): estimate without current magnitudes, then test them against that estimate
                probe = current_rows
                dropped.update(probe)
                continue
            if failure is not None:
                if last is None:
                    raise Unobservable(failure)
                # removing the last suspect made the estimate fail (a critical measurement): keep it
                table, owners, ppc, eppci, sem, row_owner, weighted, rn, J, removed = last
                net.measurement = table
                for k in removed:
                    dropped.discard(k)
                suspect.pop()
                break
            iterations += its
            if probe:
                eppci2pp(net, ppc, eppci)
                for k, kind, tbl, index, side in entry.branch_rows:
                    if k not in probe:
                        continue
                    res = net[f"res_{tbl}_est"]
                    column = f"i_{side}_ka"
                    estimated = float(res.at[index, column]) if column in res else math.nan
                    sigma = float(accuracy.sigma("current", np.array([values[k]]), [names[k]])[0])
                    z = abs(values[k] - estimated) / sigma if not math.isnan(estimated) else 0.0
                    if z > threshold:
                        suspect.append({"points": [names[k]], "row": names[k], "normalised_residual": z})
                    else:
                        dropped.discard(k)
                probe = []
                continue
            pp_index = np.asarray(eppci.pp_meas_indices, dtype=float)
            row_owner = [owners.get(int(i)) if not math.isnan(i) else None for i in pp_index.tolist()]
            candidates = np.array([k for k, o in enumerate(row_owner) if o and o[1]], dtype=int)
            weighted, rn, J, detect = _normalised(eppci, sem, candidates)
            normalised_for = (eppci, sem, detect)
            if len(dropped) >= max_bad or not np.any(np.isfinite(rn)):
                break
            worst = int(np.nanargmax(rn))
            if rn[worst] <= threshold:
                break
            label, contributors = row_owner[worst]
            removed = [k for k in contributors if k not in dropped]
            last = (table, owners, ppc, eppci, sem, row_owner, weighted, rn, J, removed)
            dropped.update(removed)
            suspect.append({"points": [names[k] for k in contributors], "row": label, "normalised_residual": float(rn[worst])})
        eppci2pp(net, ppc, eppci)
        m = len(eppci.z)
        n_states = len(eppci.E)
        dof = max(m - n_states, 1)
        limit = float(chi2.ppf(0.99, dof))
        data = self._result(entry)
        if normalised_for is not None and normalised_for[0] is eppci and normalised_for[1] is sem:
            detect = normalised_for[2]  # the loop's last computation was on this final estimate
        else:
            _, _, _, detect = _normalised(eppci, sem, np.array([k for k, o in enumerate(row_owner) if o and o[1]], dtype=int))
        residuals = self._residuals(eppci, row_owner, weighted, rn, detect)
        data.update(
            residuals=residuals,
            suspect=[p for s in suspect for p in s["points"]],
            bad_data=suspect,
            chi2={"J": J, "dof": dof, "threshold_99": limit, "bad_data_detected": J > limit},
            measurements=int(sum(1 for o in row_owner if o and o[1])),
            pseudo=int(sum(1 for o in row_owner if not (o and o[1]))),
            unsupported=list(entry.unsupported),
            iterations=iterations,
        )
        message = (
            f"estimated with {data['measurements']} measurements and {data['pseudo']} pseudo/zero-injection rows, "
            f"J = {J:.1f} (chi2 99 % limit {limit:.1f}, dof {dof}); {len(data['suspect'])} bad data removed"
        )
        return data, message

    def _measurements(self, entry: _Entry, values: np.ndarray, usable: np.ndarray, accuracy: Accuracy, dropped: set[int]):
        """``net.measurement`` for this cycle and, per measurement index, (label, measured plan rows)."""
        rows: dict[str, list[Any]] = {c: [] for c in ("name", "measurement_type", "element_type", "element", "value", "std_dev", "side")}
        owners: dict[int, tuple[str, list[int]]] = {}
        names = entry.plan.points

        def add(label: str, kind: str, etype: str, element: int, value: float, std: float, side: Any, contributors: list[int]) -> None:
            owners[len(rows["name"])] = (label, contributors)
            for column, v in zip(rows, (label, kind, etype, element, value, std, side), strict=True):
                rows[column].append(v)

        for k, bus in entry.v_rows:
            if usable[k] and k not in dropped:
                pu = values[k] / entry.vn_kv[entry.network.net.bus.index.get_loc(bus)]
                add(names[k], "v", "bus", bus, pu, float(accuracy.sigma("voltage", np.array([pu]), [names[k]])[0]), None, [k])
        for k, bus in entry.va_rows:  # synchrophasor angles: degrees, sigma from the phasor accuracy (rad)
            if usable[k] and k not in dropped:
                sigma = math.degrees(max(accuracy.relative["phasor"], accuracy.floor["phasor"]))
                add(names[k], "va", "bus", bus, float(values[k]), sigma, None, [k])
        for k, kind, table, index, side in entry.branch_rows:
            if usable[k] and k not in dropped:
                category = "current" if kind == "i" else "power"
                add(names[k], kind, table, index, values[k], float(accuracy.sigma(category, np.array([values[k]]), [names[k]])[0]), side, [k])
        bus_p, bus_q, var_p, var_q, points_p, points_q = entry.injections(values, usable, accuracy, dropped)
        for kind, totals, variances, points in (("p", bus_p, var_p, points_p), ("q", bus_q, var_q, points_q)):
            for bus, total in totals.items():
                contributors = [k for k, _ in points.get(bus, [])]
                label = "+".join(names[k] for k in contributors) if contributors else f"pseudo {kind} at {entry.bus_names[entry.network.net.bus.index.get_loc(bus)]}"
                add(label, kind, "bus", bus, total, math.sqrt(variances[bus]), None, contributors)
        frame = pd.DataFrame(rows)
        frame["element"] = frame["element"].astype(np.uint32)
        return frame, owners

    @staticmethod
    def _zero_injection(entry: _Entry) -> np.ndarray:
        """Buses (pandapower index) whose bus-bar group (closed bus-bus switches) has no source, load
        or generation: exact zero-injection measurements."""
        net = entry.network.net
        n = len(net.bus)
        position = pd.Series(np.arange(n), index=net.bus.index)
        sw = net.switch[(net.switch.et == "b") & net.switch.closed.to_numpy(dtype=bool)]
        labels = islands(n, position[sw.bus].to_numpy(), position[sw.element.astype(int)].to_numpy())
        busy = set()
        for table in ("load", "sgen", "storage", "ext_grid", "asymmetric_load", "gen"):
            df = net.get(table)
            if df is not None and len(df):
                busy.update(labels[position[df.bus[df.in_service.to_numpy(dtype=bool)]].to_numpy()].tolist())
        return net.bus.index.to_numpy()[~np.isin(labels, list(busy))]

    @staticmethod
    def _unmeasured_buses(entry: _Entry, table: pd.DataFrame) -> str:
        net = entry.network.net
        measured = set(table.element[table.element_type == "bus"].astype(int).tolist())
        for etype, a, b in (("line", "from_bus", "to_bus"), ("trafo", "hv_bus", "lv_bus")):
            sel = table[table.element_type == etype]
            if len(sel):
                measured.update(net[etype].loc[sel.element.astype(int), a].tolist())
                measured.update(net[etype].loc[sel.element.astype(int), b].tolist())
        loose = [entry.bus_names[i] for i, bus in enumerate(net.bus.index.tolist()) if bus not in measured]
        return f"singular gain matrix (too few measurements); buses without any measurement or pseudo-measurement: {describe(loose) if loose else 'none'}"

    def _residuals(self, eppci: Any, owners: list[Any], weighted: np.ndarray, rn: np.ndarray, detect: np.ndarray) -> dict[str, list[Any]]:
        hx_r = eppci.z - BaseAlgebra(eppci).create_hx(eppci.E)
        table: dict[str, list[Any]] = {c: [] for c in ("point", "measured", "estimated", "sigma", "weighted_residual", "normalised_residual", "detectability", "pseudo")}
        for k, owner in enumerate(owners):
            label, contributors = owner if owner else ("zero injection", [])
            table["point"].append(label)
            table["measured"].append(float(eppci.z[k]))
            table["estimated"].append(float(eppci.z[k] - hx_r[k]))
            table["sigma"].append(float(eppci.r_cov[k]))
            table["weighted_residual"].append(float(weighted[k]))
            table["normalised_residual"].append(float(rn[k]))
            table["detectability"].append(float(detect[k]))
            table["pseudo"].append(not contributors)
        return table

    def _result(self, entry: _Entry) -> dict[str, Any]:
        return balanced_result(entry.network.net, entry.layout, suffix="_est", internal_losses=False, as_lists=False)
