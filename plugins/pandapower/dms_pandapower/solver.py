"""The pandapower power-flow solver: convert once per model, then update + warm-started solve per call.

``runpp`` (Newton-Raphson, numba) for balanced, ``runpp_3ph`` for unbalanced power flow. The
converted net is cached per model object (weakly: a model that is garbage-collected drops its
net) and per ``unbalanced`` flag; it is rebuilt only when objects were added to or removed from
the model (or after :meth:`PandapowerSolver.forget`). Each call copies the run-time values from
the model (:meth:`~dms_pandapower.convert.PandapowerNetwork.update`) and solves starting from the
previous result (``init="results"``). While the topology (switch states, in-service flags of
branches/sources/shunts, shunt steps) is unchanged, the balanced solve uses pandapower's
``recycle`` mode: only the load/generation vector (and, if they changed, the transformer
branches or the slack voltage) of the stored internal arrays is updated. After a topology
change or a failed run the net is rebuilt internally and starts from a DC power flow.

De-energised buses (e.g. behind an open switch) have ``vm_pu``/``va_deg``/``u_kv`` = NaN in the
result; branches without supply report NaN or 0 flows as pandapower does.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import numpy as np
import pandapower as pp
from dms_hookspecs import StudyResult

from dms_kernel.model import NetworkModel
from dms_kernel.model.results import power_flow_data

from .convert import PandapowerNetwork, to_pandapower
from .results import ResultLayout, balanced_result

__all__ = ["SOLVER", "TRAFO_MODEL", "PandapowerSolver", "solve"]

SOLVER = "pandapower"
#: Transformer model: "pi" (magnetising admittance split to both sides) like power-grid-model, so
#: both solver plugins agree within 1e-6 pu; pandapower's own default "t" differs by ~3e-6 pu on
#: networks with magnetising losses (mv_oberrhein). Option ``trafo_model`` overrides it. runpp_3ph
#: supports only "t", the default for unbalanced runs.
TRAFO_MODEL = "pi"


class _Entry:
    """A converted net with its solve state and its result layout."""

    def __init__(self, model: NetworkModel, unbalanced: bool, source_impedance: bool = False) -> None:
        self.network: PandapowerNetwork = to_pandapower(
            model, unbalanced=unbalanced, source_impedance=source_impedance
        )
        self.size = len(model.objects)
        self.lock = threading.Lock()
        self.warm = False
        self.topology: bytes | None = None
        self.taps: bytes | None = None
        self.slack: bytes | None = None
        self.run_options: tuple[str, float, int] | None = None
        self.layout = ResultLayout(self.network)

    def topology_key(self) -> bytes:
        """Everything that changes the admittance matrix except taps: switch states, in-service
        flags of branches and sources, shunt steps."""
        net = self.network.net
        parts = [net.switch["closed"].to_numpy(dtype=bool).tobytes()]
        for table in ("line", "trafo", "trafo3w", "ext_grid", "shunt"):
            if len(net[table]):
                parts.append(net[table]["in_service"].to_numpy(dtype=bool).tobytes())
        if len(net.shunt):
            parts.append(net.shunt["step"].to_numpy(dtype=float).tobytes())
        return b"|".join(parts)

    def taps_key(self) -> bytes:
        net = self.network.net
        return b"|".join(net[t]["tap_pos"].to_numpy(dtype=float).tobytes() for t in ("trafo", "trafo3w") if len(net[t]))

    def slack_key(self) -> bytes:
        ext = self.network.net.ext_grid
        return ext["vm_pu"].to_numpy(dtype=float).tobytes() + ext["va_degree"].to_numpy(dtype=float).tobytes()


def _phase_rows(values: np.ndarray) -> list[float]:
    """``(n, 3)`` per-phase values -> flat list in row order (element-major)."""
    return values.reshape(-1).tolist()


class PandapowerSolver:
    """Power flow with pandapower on network models; one instance per plugin (thread-safe)."""

    def __init__(self) -> None:
        self._cache: weakref.WeakKeyDictionary[NetworkModel, dict[tuple[bool, bool], _Entry]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def entry(self, model: NetworkModel, unbalanced: bool, source_impedance: bool = False) -> _Entry:
        """The cached conversion of ``model`` (built on first use, rebuilt if objects were added/removed)."""
        key = (unbalanced, source_impedance)
        with self._lock:
            entries = self._cache.setdefault(model, {})
            entry = entries.get(key)
            if entry is None or entry.size != len(model.objects):
                entry = entries[key] = _Entry(model, unbalanced, source_impedance)
            return entry

    def forget(self, model: NetworkModel) -> None:
        """Drop the cached conversions of ``model`` (after terminals were rewired in place)."""
        with self._lock:
            self._cache.pop(model, None)

    def network(
        self, model: NetworkModel, unbalanced: bool = False, source_impedance: bool = False
    ) -> PandapowerNetwork:
        return self.entry(model, unbalanced, source_impedance).network

    def run(self, model: NetworkModel, unbalanced: bool = False, **options: Any) -> StudyResult:
        """Update the cached net from ``model`` and solve it.

        Options: ``tolerance_mva``, ``max_iteration``, ``trafo_model``, ``recycle`` and
        ``source_impedance`` (the EnergySource's Thevenin impedance between an ideal source and its
        node, as power-grid-model's option of that name; default: an ideal source).
        """
        started = time.time()
        entry = self.entry(model, unbalanced, bool(options.get("source_impedance", False)))
        with entry.lock:
            network = entry.network
            net = network.net
            network.update(model)
            topology = entry.topology_key()
            same_topology = entry.warm and topology == entry.topology
            tolerance = float(options.get("tolerance_mva", 1e-8))
            trafo_model = str(options.get("trafo_model", "t" if unbalanced else TRAFO_MODEL))
            max_iteration = int(options.get("max_iteration", 30))
            run_options = (trafo_model, tolerance, max_iteration)
            if run_options != entry.run_options:
                # recycled runs reuse the previous run's options and admittances: rebuild
                same_topology = False
                entry.run_options = run_options
            init = "results" if same_topology else "auto"
            try:
                if unbalanced:
                    pp.runpp_3ph(
                        net, init=init, calculate_voltage_angles=True, tolerance_mva=tolerance, trafo_model=trafo_model
                    )
                else:
                    taps, slack = entry.taps_key(), entry.slack_key()
                    if same_topology and options.get("recycle", True):
                        # only loads/generation, taps or the slack voltage changed: pandapower's
                        # recycle mode updates the stored internal arrays instead of rebuilding them
                        recycle = {"bus_pq": True, "trafo": taps != entry.taps, "gen": slack != entry.slack}
                        init = "results+recycle"
                    else:
                        net["_ppc"] = None  # rebuild the internal arrays (stored again for the next recycle)
                        recycle = {"bus_pq": True, "trafo": True, "gen": True}
                    pp.runpp(
                        net,
                        algorithm="nr",
                        numba=True,
                        init="results" if same_topology else "auto",
                        calculate_voltage_angles=True,
                        tolerance_mva=tolerance,
                        trafo_model=trafo_model,
                        max_iteration=max_iteration,
                        recycle=recycle,
                    )
                    entry.taps, entry.slack = taps, slack
            except pp.LoadflowNotConverged as exc:
                entry.warm = False
                entry.topology = None
                return StudyResult(
                    study="power_flow",
                    solver=SOLVER,
                    converged=False,
                    message=f"pandapower {'runpp_3ph' if unbalanced else 'runpp'} did not converge on model "
                    f"{model.name!r}: {exc}",
                    started=started,
                    finished=time.time(),
                )
            entry.warm = True
            entry.topology = topology
            data = self._result_3ph(entry) if unbalanced else self._result(entry)
        iterations = data.get("iterations")
        return StudyResult(
            study="power_flow",
            solver=SOLVER,
            converged=True,
            data=data,
            message=f"converged ({'unbalanced' if unbalanced else 'balanced'}"
            f"{f', {iterations} iterations' if iterations is not None else ''}, init={init})",
            started=started,
            finished=time.time(),
        )

    # -- results --------------------------------------------------------------------------

    def _result(self, entry: _Entry) -> dict[str, Any]:
        net = entry.network.net
        return balanced_result(net, entry.layout, iterations=_iterations(net))

    def _result_3ph(self, entry: _Entry) -> dict[str, Any]:
        net = entry.network.net
        layout = entry.layout
        res = net.res_bus_3ph
        pos = layout.bus_positions
        vm = np.column_stack([res[f"vm_{p}_pu"].to_numpy(dtype=float)[pos] for p in "abc"])
        va = np.column_stack([res[f"va_{p}_degree"].to_numpy(dtype=float)[pos] for p in "abc"])
        va = (va + 180.0) % 360.0 - 180.0
        data = power_flow_data((), (), losses_mw=0.0, losses_mvar=0.0, unbalanced=True, iterations=_iterations(net))
        data["nodes"].update(
            layout.node_columns(),
            vm_pu=_phase_rows(vm),
            va_deg=_phase_rows(va),
            u_kv=_phase_rows(vm * layout.phase_kv[:, None]),
        )
        columns: dict[str, list[np.ndarray]] = {
            k: [] for k in ("i_ka", "p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "loading_percent")
        }
        losses_p = losses_q = 0.0
        for table, positions in layout.branch_tables.items():
            res_table = net[f"res_{table}_3ph"]

            def phases(pattern: str, res_table: Any = res_table, positions: np.ndarray = positions) -> np.ndarray:
                return np.column_stack([res_table[pattern.format(p)].to_numpy(dtype=float)[positions] for p in "abc"])

            if table == "line":
                columns["i_ka"].append(phases("i_{}_ka").reshape(-1))
                names = ("p_{}_from_mw", "q_{}_from_mvar", "p_{}_to_mw", "q_{}_to_mvar")
            else:
                columns["i_ka"].append(np.fmax(phases("i_{}_hv_ka"), phases("i_{}_lv_ka")).reshape(-1))
                names = ("p_{}_hv_mw", "q_{}_hv_mvar", "p_{}_lv_mw", "q_{}_lv_mvar")
            for name, pattern in zip(("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"), names, strict=True):
                columns[name].append(phases(pattern).reshape(-1))
            columns["loading_percent"].append(phases("loading_{}_percent").reshape(-1))
            losses_p += float(np.nansum(phases("pl_{}_mw")))
            losses_q += float(np.nansum(phases("ql_{}_mvar")))
        data["branches"].update(layout.branch_columns())
        for name, parts in columns.items():
            data["branches"][name] = np.concatenate(parts).tolist() if parts else []
        data["losses_mw"], data["losses_mvar"] = losses_p, losses_q
        return data


def _iterations(net: Any) -> int | None:
    ppc = getattr(net, "_ppc", None)
    if isinstance(ppc, dict) and "iterations" in ppc:
        try:
            return int(ppc["iterations"])
        except (TypeError, ValueError):
            return None
    return None


_default = PandapowerSolver()


def solve(model: NetworkModel, unbalanced: bool = False, **options: Any) -> StudyResult:
    """Power flow on ``model`` with the module's shared solver (cached conversions)."""
    return _default.run(model, unbalanced=unbalanced, **options)
