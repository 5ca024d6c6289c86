"""Unbalanced power flow with the OpenDSS engine (dss-python / DSS C-API).

A :class:`DssSolver` compiles the converted circuit ONCE into its own OpenDSS engine context
(``DSS.NewContext()``, so several models and tests do not share OpenDSS's global circuit) and per
call only applies run-time values (:meth:`DssSolver.update`) and solves (:meth:`DssSolver.solve`).
Calls on one solver are serialised by a lock; different solvers run independently.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
from dms_hookspecs import StudyResult
from dms_kernel.model import ACLineSegment, EnergySource, NetworkModel, Switch
from dms_kernel.model.results import power_flow_data

from .convert import DssCircuit, capacitor_states, convert, tap_ratio

__all__ = ["DssSolver", "SOLVER_NAME"]

SOLVER_NAME = "opendss"


def _new_engine():
    from dss import DSS

    if hasattr(DSS, "NewContext"):
        return DSS.NewContext()
    return DSS  # pragma: no cover - old dss-python: one global engine per process


class DssSolver:
    """OpenDSS power flow for one network model (compiled once, updated per call).

    :param model: the network model.
    :param frequency_hz: base frequency used for the conversion.
    :param tap_control: let OpenDSS regulator controls move the taps (default: taps fixed at the
        model's ``step``).
    """

    def __init__(self, model: NetworkModel, *, frequency_hz: float = 60.0, tap_control: bool = False) -> None:
        self.frequency_hz = frequency_hz
        self.tap_control = tap_control
        self.compile_count = 0
        self.lock = threading.Lock()
        self.dss = _new_engine()
        self.circuit: DssCircuit
        self._object_count = -1
        self.compile(model)

    # -- build -----------------------------------------------------------------------------

    def compile(self, model: NetworkModel) -> None:
        """Convert ``model`` and compile it into the engine (the expensive step)."""
        self.circuit = convert(model, frequency_hz=self.frequency_hz, tap_control=self.tap_control)
        text = self.dss.Text
        for line in self.circuit.script.splitlines():
            if line.strip():
                text.Command = line
        self.compile_count += 1
        self._object_count = len(model.objects)
        circuit = self.dss.ActiveCircuit
        self._state: dict[str, Any] = {}
        for switch in self.circuit.switches:
            self._state[switch] = bool(model.get(switch, Switch).open)
        # node index: which entries of AllNodeNames are model nodes and phases 1..3
        names = list(circuit.AllNodeNames)
        rows, index = [], []
        for position, full in enumerate(names):
            bus, _, node = full.partition(".")
            number = int(node) if node.isdigit() else 0
            mrid = self.circuit.node_of_bus.get(bus)
            if mrid is None or number not in (1, 2, 3):
                continue
            rows.append((mrid, self.circuit.node_names[mrid], number))
            index.append(position)
        self._node_rows = rows
        self._node_index = np.asarray(index, dtype=np.int64)

    def needs_compile(self, model: NetworkModel) -> bool:
        """Whether the model's object set changed since compilation (elements added/removed)."""
        return len(model.objects) != self._object_count

    # -- run-time values -------------------------------------------------------------------

    def update(self, model: NetworkModel) -> None:
        """Apply loads, generation, switch states, tap positions, capacitor sections and the
        source voltage from ``model`` to the compiled circuit (no recompilation)."""
        circuit = self.dss.ActiveCircuit
        state = self._state
        loads = circuit.Loads
        for load in self.circuit.loads:
            obj = model.objects[load.source]
            value = (obj.p_mw, obj.q_mvar)
            if state.get(load.dss_name) != value:
                loads.Name = load.dss_name.split(".", 1)[1]
                loads.kW = value[0] * 1000.0
                loads.kvar = value[1] * 1000.0
                state[load.dss_name] = value
        generators = circuit.Generators
        for gen in self.circuit.generators:
            obj = model.objects[gen.source]
            value = (obj.p_mw, obj.q_mvar)
            if state.get(gen.dss_name) != value:
                generators.Name = gen.dss_name.split(".", 1)[1]
                generators.kW = value[0] * 1000.0
                generators.kvar = value[1] * 1000.0
                state[gen.dss_name] = value
        text = self.dss.Text
        for mrid, element in self.circuit.switches.items():
            is_open = bool(model.objects[mrid].open)
            if state.get(mrid) != is_open:
                text.Command = f"{'Open' if is_open else 'Close'} {element} 1"
                state[mrid] = is_open
        if not self.tap_control:
            transformers = circuit.Transformers
            for mrid, (element, winding) in self.circuit.taps.items():
                ratio = tap_ratio(model.objects[mrid])
                if state.get(mrid) != ratio:
                    transformers.Name = element.split(".", 1)[1]
                    transformers.Wdg = winding
                    transformers.Tap = ratio
                    state[mrid] = ratio
        for mrid, element in self.circuit.capacitors.items():
            states = capacitor_states(model.objects[mrid])
            if state.get(mrid) != states:
                text.Command = f"{element}.states=[{states}]"
                state[mrid] = states
        source = model.objects.get(self.circuit.source) if self.circuit.source else None
        if isinstance(source, EnergySource):
            kv = self.circuit.source_base_kv
            value = (source.voltage_kv / kv if source.voltage_kv and kv else 1.0, source.voltage_angle_deg)
            if state.get("source") != value:
                vsources = circuit.Vsources
                vsources.Name = "source"
                vsources.pu = value[0]
                vsources.AngleDeg = value[1]
                state["source"] = value

    # -- solve -----------------------------------------------------------------------------

    def solve(self, model: NetworkModel) -> StudyResult:
        """Update from ``model``, solve, and return the per-phase result."""
        started = time.time()
        with self.lock:
            if self.needs_compile(model):
                self.compile(model)
            self.update(model)
            circuit = self.dss.ActiveCircuit
            solution = circuit.Solution
            try:
                solution.Solve()
                converged = bool(solution.Converged)
                message = "" if converged else f"OpenDSS did not converge in {solution.Iterations} iterations"
            except Exception as exc:  # noqa: BLE001 - the engine reports failures as DSSException
                converged, message = False, f"OpenDSS: {exc}"
            if not converged:
                return StudyResult("power_flow", SOLVER_NAME, False, {}, message or "not converged", started, time.time())
            data = self._results(model, circuit)
        return StudyResult("power_flow", SOLVER_NAME, True, data, "", started, time.time())

    def _results(self, model: NetworkModel, circuit) -> dict[str, Any]:
        volts = np.asarray(circuit.AllBusVolts, dtype=float).reshape(-1, 2)
        vm_pu_all = np.asarray(circuit.AllBusVmagPu, dtype=float)
        idx = self._node_index
        complex_v = volts[idx, 0] + 1j * volts[idx, 1]
        vm_pu = vm_pu_all[idx]
        va = np.degrees(np.angle(complex_v))
        u_kv = np.abs(complex_v) / 1000.0
        dead = vm_pu < 1e-6
        nodes = []
        for k, (mrid, name, phase) in enumerate(self._node_rows):
            if dead[k]:
                nodes.append((mrid, name, phase, math.nan, math.nan, 0.0))
            else:
                nodes.append((mrid, name, phase, float(vm_pu[k]), float(va[k]), float(u_kv[k])))
        branches = []
        for mrid, elements in self.circuit.elements.items():
            kind = self.circuit.element_kind.get(mrid, "")
            if not elements or not elements[0].startswith(("Line.", "Transformer.")):
                continue
            obj = model.objects.get(mrid)
            name = obj.name if obj is not None else mrid
            rating_a = None
            if isinstance(obj, ACLineSegment) and obj.max_i_ka:
                rating_a = obj.max_i_ka * 1000.0
            elif isinstance(obj, Switch) and obj.rated_current_a:
                rating_a = obj.rated_current_a
            for element in elements:
                circuit.SetActiveElement(element)
                cke = circuit.ActiveCktElement
                ncond = cke.NumConductors
                order = list(cke.NodeOrder)
                currents = np.asarray(cke.Currents, dtype=float).reshape(-1, 2)
                powers = np.asarray(cke.Powers, dtype=float).reshape(-1, 2)
                amps = np.hypot(currents[:, 0], currents[:, 1])
                normal = rating_a if rating_a is not None else (cke.NormalAmps if element.startswith("Transformer.") else None)
                for k in range(ncond):
                    phase = order[k]
                    if phase not in (1, 2, 3):
                        continue
                    if element.startswith("Transformer."):
                        i_a = amps[k]  # winding 1: NormalAmps is rated at winding 1's voltage
                    else:
                        i_a = max(amps[k], amps[ncond + k]) if len(amps) > ncond + k else amps[k]
                    p_to = powers[ncond + k] if len(powers) > ncond + k else (0.0, 0.0)
                    loading = i_a / normal * 100.0 if normal else math.nan
                    branches.append(
                        (mrid, name, kind, phase, float(i_a) / 1000.0, float(powers[k][0]) / 1000.0,
                         float(powers[k][1]) / 1000.0, float(p_to[0]) / 1000.0, float(p_to[1]) / 1000.0, float(loading))
                    )
        losses = circuit.Losses
        return power_flow_data(
            nodes,
            branches,
            losses_mw=losses[0] / 1e6,
            losses_mvar=losses[1] / 1e6,
            unbalanced=True,
            iterations=int(circuit.Solution.Iterations),
            compile_count=self.compile_count,
        )

