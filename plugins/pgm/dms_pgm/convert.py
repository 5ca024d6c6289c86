"""Network model -> power-grid-model input, built once; values that change are pushed with ``update``.

:func:`to_pgm` converts a :class:`~dms_kernel.model.NetworkModel` into a
:class:`PgmNetwork`: the power-grid-model input dataset (numpy structured arrays), the mappings
between mRIDs and power-grid-model ids and the ``PowerGridModel`` instance. Conversion happens
once; :meth:`PgmNetwork.update` reads the values that change at run time from the model (load
P/Q, generator P/Q, switch and equipment states, tap positions, source voltage, shunt sections)
and applies them with ``PowerGridModel.update`` — the model is never rebuilt. The update arrays
and the calculations are kept between cycles (:mod:`dms_pgm.prepared`): no dataset is rebuilt
per cycle either.

Mapping (power-grid-model units are SI: V, W, var, ohm, F, S):

- ConnectivityNode / TopologicalNode -> ``node``; ``u_rated`` is the nominal voltage of the node's
  BaseVoltage (node, container or attached equipment), else a transformer end's rated voltage,
  propagated across lines and switches.
- ACLineSegment -> ``line``: r1/x1/c1 and r0/x0/c0 from the per-length sequence impedance times
  the length, from a per-length phase impedance matrix (Kron-reduced neutral, symmetrical
  components: the diagonal of ``A^-1 Z A``), or from the total values on the segment. A missing
  zero-sequence impedance is replaced by the positive-sequence one (asymmetric mode only).
- Switch family (Breaker, Recloser, LoadBreakSwitch, Disconnector, Fuse, Sectionaliser, Jumper):
  a switch in series with one line end (its node holds only the switch and that line end) is
  folded into the line: the line end connects to the switch's other node and its
  from_status/to_status is "switch closed" (exact; the node gets the kept node's voltage when the
  switch is closed, the line's open-end voltage when it is open). Every other switch is a
  ``link`` with from_status/to_status = closed; pgm's link is a 1e6 pu admittance, which costs
  up to ~1e-6 pu in voltage on meshed MV networks like mv_oberrhein (``absorb_switches=False``
  turns folding off).
- PowerTransformer with 2 or 3 ends -> ``transformer`` / ``three_winding_transformer``; uk/pk/i0/p0
  from the end impedances (each referred to its end's rated voltage), winding types from the end
  connections, clock from the phase-angle clock of end 2 (and 3), tap data from the
  RatioTapChanger (the step is rounded to an integer position).
- EnergyConsumer -> ``sym_load`` (``asym_load`` in asymmetric mode). A ZIP load response
  characteristic splits the consumer into up to three loads (constant impedance, current and
  power parts, each with its own P and Q fraction); an exponential model with exponents 0, 1 or 2
  maps to the matching type. Other exponents are rejected.
- EnergySource -> ``source``: ``u_ref`` = voltage_kv / node nominal voltage (1.0 when not set),
  an (almost) ideal source (sk = 1e15 VA) like pandapower's ``ext_grid`` in ``runpp``; with
  ``source_impedance=True`` ``sk``/``rx_ratio``/``z01_ratio`` come from its Thevenin impedance.
- LinearShuntCompensator -> ``shunt`` (sections × per-section admittance; zero-sequence only
  when wye connected).
- PowerElectronicsConnection (PV, battery) and SynchronousMachine -> ``sym_gen`` (PQ).

Single-phase transformer banks, single-/two-phase lines and centre-tapped (split-phase) loads
are not supported by power-grid-model: :class:`UnsupportedNetworkError` names the element and
suggests the ``opendss`` solver.
"""

from __future__ import annotations

import cmath
import math
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from power_grid_model import CalculationMethod, ComponentType, DatasetType, PowerGridModel, initialize_array
from power_grid_model.enum import LoadGenType, WindingType

from dms_kernel.model import (
    SWITCH_TYPES,
    ACLineSegment,
    BaseVoltage,
    ConductingEquipment,
    ConnectivityNode,
    EnergyConsumer,
    EnergyConsumerPhase,
    EnergySource,
    LinearShuntCompensator,
    LinearShuntCompensatorPhase,
    LoadResponseCharacteristic,
    ModelError,
    NetworkModel,
    PerLengthPhaseImpedance,
    PerLengthSequenceImpedance,
    PowerElectronicsConnection,
    PowerTransformer,
    PowerTransformerEnd,
    Switch,
    SynchronousMachine,
    Terminal,
    TopologicalNode,
    VoltageLevel,
)

from .prepared import PreparedCalculation, UpdateArrays, UpdatePusher

__all__ = ["PgmNetwork", "UnsupportedNetworkError", "to_pgm", "IDEAL_SOURCE_SK_VA"]

C = ComponentType
IDEAL_SOURCE_SK_VA = 1e15  #: short-circuit power of a source without impedance (pgm's default is 1e10)
_PHASE_INDEX = {"A": 0, "B": 1, "C": 2}
_A = cmath.exp(2j * math.pi / 3)
_SYM = np.array([[1, 1, 1], [1, _A * _A, _A], [1, _A, _A * _A]])  # abc = _SYM @ 012
_SYM_INV = np.linalg.inv(_SYM)


class UnsupportedNetworkError(ModelError):
    """The model contains an element power-grid-model cannot represent."""


def _describe(obj: Any) -> str:
    return f"{type(obj).__name__} {obj.mrid!r} (name {obj.name!r})"


def _unsupported(obj: Any, what: str) -> UnsupportedNetworkError:
    return UnsupportedNetworkError(
        f"{_describe(obj)}: {what} is not supported by power-grid-model; use the 'opendss' solver "
        "(options solver = \"opendss\") for multi-phase feeders"
    )


def _three_phase(phases: str) -> bool:
    return {"A", "B", "C"} <= set(phases.upper())


class _Ids:
    def __init__(self) -> None:
        self.next = 0

    def take(self) -> int:
        self.next += 1
        return self.next - 1


class PgmNetwork:
    """A network model converted to power-grid-model (see the module docstring).

    :ivar input_data: the input dataset (component type -> structured array).
    :ivar node_mrids: node mRIDs in power-grid-model node order (pgm node id == position).
    :ivar node_index: node mRID -> pgm node id.
    :ivar element_ids: equipment mRID -> pgm ids (a ZIP load has up to three).
    :ivar mrid_of: pgm id -> mRID.
    :ivar model: the ``PowerGridModel`` built once from ``input_data``.
    """

    def __init__(self, asymmetric: bool, frequency: float) -> None:
        self.asymmetric = asymmetric
        self.frequency = frequency
        self.input_data: dict[ComponentType, np.ndarray] = {}
        self.node_mrids: list[str] = []
        self.node_names: list[str] = []
        self.node_index: dict[str, int] = {}
        self.u_rated: np.ndarray = np.zeros(0)
        self.element_ids: dict[str, list[int]] = {}
        self.mrid_of: dict[int, str] = {}
        self.model: PowerGridModel | None = None
        #: (component, element mRID, name, CIM class) per row of each branch component, in row order
        self.branches: dict[ComponentType, list[tuple[str, str, str]]] = {}
        self._updaters: list[tuple[ComponentType, Callable[[], dict[str, np.ndarray]]]] = []
        self._model_ref: weakref.ref[NetworkModel] | None = None
        self._pushed: dict[ComponentType, dict[str, np.ndarray]] = {}  #: values of the last update (empty: push all)
        self._absorbed_switches: list[Switch] = []
        self.object_count = 0  #: number of model objects at conversion (a structural change needs a new conversion)
        #: nodes folded away: (node mRID, switch, index of the switch terminal at that node, line, line side)
        self.absorbed: list[tuple[str, Switch, int, ACLineSegment, int]] = []
        self.line_row: dict[str, int] = {}
        self.absorbed_names: list[str] = []
        self._absorbed_terminals: list[list[Terminal]] = []
        self.absorbed_closed: np.ndarray = np.zeros(0, dtype=bool)  #: switch states of ``absorbed`` at the last update
        self.line_status: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))  #: line from/to status pushed last
        self.kv: dict[str, float] = {}
        self._update_arrays = UpdateArrays()  #: the update arrays, reused (their C datasets are made once)
        self._pusher = UpdatePusher()
        #: held around update + calculate + reading the output (the output arrays are reused)
        self.lock = threading.RLock()
        self._prepared: tuple[PowerGridModel | None, dict[tuple, PreparedCalculation]] = (None, {})
        self._absorbed_flat_terminals: list[Terminal] = []  #: terminals of the folded switches, flat
        self._absorbed_owner: list[int] = []  #: position in ``absorbed`` of each of those terminals
        self._closed_now: np.ndarray = np.zeros(0, dtype=bool)  #: folded switch states read by the running update

    # -- update --------------------------------------------------------------------------

    def _blank(self, component: ComponentType) -> np.ndarray:
        """The update array of ``component``, all null; reused (:class:`dms_pgm.prepared.UpdateArrays`)."""
        return self._update_arrays.blank(component, self.input_data[component]["id"])

    def push(self, data: dict[ComponentType, np.ndarray]) -> None:
        """``self.model.update(update_data=data)``, with the update's C dataset made once per set
        of update arrays (:class:`dms_pgm.prepared.UpdatePusher`)."""
        assert self.model is not None
        self._pusher.push(self.model, data)

    def prepared(
        self,
        *,
        state_estimation: bool = False,
        calculation_method: CalculationMethod = CalculationMethod.newton_raphson,
        error_tolerance: float = 1e-8,
        max_iterations: int = 20,
        output_component_types: Any = None,
    ) -> PreparedCalculation:
        """The calculation with these settings on :attr:`model` (symmetric unless
        :attr:`asymmetric`), made on first use and kept while the model object is the same; its
        output arrays are reused by every run (:class:`dms_pgm.prepared.PreparedCalculation`)."""
        assert self.model is not None
        model, calculations = self._prepared
        if model is not self.model:
            calculations = {}
            self._prepared = (self.model, calculations)
        outputs = output_component_types
        outputs_key = tuple(sorted((str(c), tuple(a)) for c, a in outputs.items())) if isinstance(outputs, dict) else (
            tuple(sorted(map(str, outputs))) if outputs is not None else None
        )
        key = (state_estimation, calculation_method, error_tolerance, max_iterations, outputs_key)
        calculation = calculations.get(key)
        if calculation is None:
            calculation = calculations[key] = PreparedCalculation(
                self.model, state_estimation=state_estimation, symmetric=not self.asymmetric, calculation_method=calculation_method,
                error_tolerance=error_tolerance, max_iterations=max_iterations, output_component_types=outputs,
            )
        return calculation

    def _read_absorbed_closed(self) -> np.ndarray:
        """``_switch_closed`` of the folded switches, read from the model now (bool array)."""
        if not self.absorbed:
            return self.absorbed_closed
        closed = [not switch.open and switch.in_service for switch in self._absorbed_switches]
        connected = [terminal.connected for terminal in self._absorbed_flat_terminals]
        if not all(connected):
            for owner, ok in zip(self._absorbed_owner, connected, strict=True):
                if not ok:
                    closed[owner] = False
        return np.array(closed, dtype=bool)

    def update(self, model: NetworkModel | None = None, skip: Sequence[ComponentType] = (), push: bool = True) -> dict[ComponentType, np.ndarray]:
        """Push loads, generation, switch/equipment states, taps, source voltages and shunts into the model.

        ``skip``: components not to push (state estimation ignores the specified load and
        generator powers: its sensors say what they are). Returns the update dataset (its arrays
        are reused by the next call); with ``push=False`` the caller must pass it to :meth:`push`
        itself (e.g. merged with its sensor update: one call instead of two).

        Only what changed since the last push is sent: an attribute whose values are all
        unchanged is left empty (null: "keep") in the update dataset, a component without
        changes is left out, so unchanged switch, tap and status columns cost nothing in
        power-grid-model. Every value is read from the model objects on every call; an
        attribute found unchanged keeps the array object of the last push (``line_status``,
        ``absorbed_closed`` and ``_pushed`` stay the same objects while nothing changed, which
        lets the result tables cache what they derive from them by identity).
        """
        assert self.model is not None
        if model is not None and (self._model_ref is None or self._model_ref() is not model):
            raise ValueError(f"this PgmNetwork was not converted from model {model.name!r}")
        closed = self._read_absorbed_closed()
        self._closed_now = closed
        pushed = self._pushed
        data: dict[ComponentType, np.ndarray] = {}
        current: dict[ComponentType, dict[str, np.ndarray]] = {}
        for component, values_of in self._updaters:
            if component in skip:
                continue
            values = values_of()
            last = pushed.get(component)
            array = None
            for attribute, value in values.items():
                value = np.asarray(value)
                if last is not None and _same(last[attribute], value):
                    values[attribute] = last[attribute]
                    continue
                values[attribute] = value
                if array is None:
                    array = self._blank(component)
                array[attribute] = value
            current[component] = values
            if array is not None:
                data[component] = array
        if data and push:
            self.push(data)
        self._pushed = current
        if C.line in current:
            line = current[C.line]
            if line["from_status"] is not self.line_status[0] or line["to_status"] is not self.line_status[1]:
                self.line_status = (line["from_status"], line["to_status"])
        if self.absorbed and not _same(self.absorbed_closed, closed):
            self.absorbed_closed = closed
        return data


def _same(old: np.ndarray, new: np.ndarray) -> bool:
    """Bitwise equal (a few µs less than ``np.array_equal``; NaN equals NaN)."""
    return old.dtype == new.dtype and old.shape == new.shape and old.tobytes() == new.tobytes()


def _status(equipment: ConductingEquipment, terminal: Terminal | None = None) -> int:
    return int(equipment.in_service and (terminal is None or terminal.connected))




def _switch_closed(switch: Switch | None, terminals: Sequence[Terminal] = ()) -> int:
    """1 if ``switch`` is None or closed, in service and connected at its ``terminals``."""
    if switch is None:
        return 1
    return int(not switch.open and switch.in_service and all(t.connected for t in terminals))




def _in_service_flags(objects: Sequence[ConductingEquipment]) -> np.ndarray:
    """``in_service`` of every object (bool array); the usual all-in-service case costs one pass."""
    flags = [obj.in_service for obj in objects]
    return np.ones(len(flags), dtype=bool) if all(flags) else np.array(flags, dtype=bool)


def _connected_flags(terminals: Sequence[Terminal]) -> np.ndarray:
    """``connected`` of every terminal (bool array), as :func:`_in_service_flags`."""
    flags = [terminal.connected for terminal in terminals]
    return np.ones(len(flags), dtype=bool) if all(flags) else np.array(flags, dtype=bool)


# -- node voltages ------------------------------------------------------------------------


def _node_nominal_kv(model: NetworkModel, nodes: list[str]) -> dict[str, float]:
    """Nominal kV per node: explicit base voltages first, then transformer ends and equipment ratings."""
    parent = {n: n for n in nodes}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def nominal(reference: str | None) -> float | None:
        if reference and reference in model.objects:
            obj = model.objects[reference]
            if isinstance(obj, BaseVoltage) and obj.nominal_kv > 0:
                return obj.nominal_kv
            if isinstance(obj, VoltageLevel):
                return nominal(obj.base_voltage)
        return None

    explicit: dict[str, float] = {}
    rated: dict[str, float] = {}
    for node in nodes:
        obj = model.objects.get(node)
        if isinstance(obj, TopologicalNode | ConnectivityNode):
            kv = nominal(getattr(obj, "base_voltage", None)) or nominal(obj.container)
            if kv is None and isinstance(obj, ConnectivityNode) and obj.topological_node in model.objects:
                kv = nominal(model.objects[obj.topological_node].base_voltage)  # type: ignore[attr-defined]
            if kv:
                explicit[node] = kv
    for end in model.of_type(PowerTransformerEnd):
        terminal = _end_terminal(model, end)
        node = model.node_of(terminal) if terminal else None
        if node in parent:
            kv = nominal(end.base_voltage)
            if kv:
                explicit.setdefault(node, kv)
            elif end.rated_u_kv > 0:
                rated.setdefault(node, end.rated_u_kv)
    for equipment in model.of_type(ConductingEquipment):
        nodes_of = [model.node_of(t) for t in model.terminals(equipment)]
        if isinstance(equipment, ACLineSegment | Switch) and len(nodes_of) == 2 and None not in nodes_of:
            a, b = find(nodes_of[0]), find(nodes_of[1])  # type: ignore[arg-type]
            if a != b:
                parent[a] = b
        if isinstance(equipment, PowerTransformer):
            continue
        kv = nominal(equipment.base_voltage)
        if kv is None:
            for attribute in ("nominal_kv", "rated_u_kv"):
                value = getattr(equipment, attribute, 0.0)
                if value:
                    rated_kv = value
                    break
            else:
                continue
            target = rated
            kv = rated_kv
        else:
            target = explicit
        for node in nodes_of:
            if node in parent:
                target.setdefault(node, kv)
    group_kv: dict[str, float] = {}
    for source in (explicit, rated):
        for node, kv in source.items():
            group_kv.setdefault(find(node), kv)
    result = {}
    for node in nodes:
        kv = explicit.get(node) or group_kv.get(find(node))
        if not kv:
            obj = model.objects.get(node)
            label = repr(obj) if obj is not None else repr(node)
            raise ModelError(f"no nominal voltage for node {label}: give it (or its equipment) a BaseVoltage")
        result[node] = kv
    return result


def _end_terminal(model: NetworkModel, end: PowerTransformerEnd) -> Terminal | None:
    if end.terminal and end.terminal in model.objects:
        return model.get(end.terminal, Terminal)
    if end.power_transformer and end.power_transformer in model.objects:
        terminals = model.terminals(end.power_transformer)
        if 0 < end.end_number <= len(terminals):
            return terminals[end.end_number - 1]
    return None


# -- element parameters ---------------------------------------------------------------------


def _kron(z: np.ndarray) -> np.ndarray:
    """Eliminate conductors beyond the third (neutral) from a phase matrix."""
    if len(z) <= 3:
        return z
    p, n = z[:3, :3], z[3:, 3:]
    return p - z[:3, 3:] @ np.linalg.solve(n, z[3:, :3])


def _sequence(matrix: np.ndarray) -> tuple[complex, complex]:
    """(positive, zero) sequence values of a 3x3 phase matrix (diagonal of A^-1 M A)."""
    seq = _SYM_INV @ matrix @ _SYM
    return complex(seq[1, 1]), complex(seq[0, 0])


def _line_params(model: NetworkModel, line: ACLineSegment) -> dict[str, float]:
    """r1, x1, b1 (S), r0, x0, b0 totals of a line (zero-sequence NaN if unknown)."""
    nan = math.nan
    if line.per_length_impedance:
        impedance = model.get(line.per_length_impedance)
        length = line.length_km
        if isinstance(impedance, PerLengthSequenceImpedance):
            r0, x0 = impedance.r0_ohm_per_km, impedance.x0_ohm_per_km
            known0 = bool(r0 or x0)
            return {
                "r1": impedance.r_ohm_per_km * length,
                "x1": impedance.x_ohm_per_km * length,
                "b1": impedance.b_us_per_km * 1e-6 * length,
                "r0": r0 * length if known0 else nan,
                "x0": x0 * length if known0 else nan,
                "b0": impedance.b0_us_per_km * 1e-6 * length if known0 else nan,
            }
        if isinstance(impedance, PerLengthPhaseImpedance):
            if impedance.conductor_count < 3:
                raise _unsupported(line, f"a {impedance.conductor_count}-conductor phase impedance ({impedance.mrid!r})")
            z, b = impedance.matrices()
            z1, z0 = _sequence(_kron(np.array(z, dtype=complex)))
            b1, b0 = _sequence(_kron(np.array(b, dtype=complex)))
            return {
                "r1": z1.real * length, "x1": z1.imag * length, "b1": b1.real * 1e-6 * length,
                "r0": z0.real * length, "x0": z0.imag * length, "b0": b0.real * 1e-6 * length,
            }
        raise ModelError(f"{_describe(line)}: per_length_impedance {line.per_length_impedance!r} is a {type(impedance).__name__}")
    if line.r_ohm is None and line.x_ohm is None:
        raise ModelError(f"{_describe(line)} has neither a per-length impedance nor total r_ohm/x_ohm")
    known0 = line.r0_ohm is not None or line.x0_ohm is not None
    return {
        "r1": line.r_ohm or 0.0, "x1": line.x_ohm or 0.0, "b1": (line.b_us or 0.0) * 1e-6,
        "r0": (line.r0_ohm or 0.0) if known0 else nan,
        "x0": (line.x0_ohm or 0.0) if known0 else nan,
        "b0": (line.b0_us or 0.0) * 1e-6 if known0 else nan,
    }


def _winding(end: PowerTransformerEnd) -> int:
    connection = end.connection.strip().upper()
    if connection == "D":
        return WindingType.delta
    if connection in ("Y", "YN"):
        return WindingType.wye_n if (connection == "YN" or end.grounded) else WindingType.wye
    if connection in ("Z", "ZN"):
        return WindingType.zigzag_n if (connection == "ZN" or end.grounded) else WindingType.zigzag
    raise _unsupported(end, f"winding connection {end.connection!r}")


def _consistent_windings(transformer: PowerTransformer, first: int, second: int, clock: int, asymmetric: bool) -> tuple[int, int]:
    """Winding types power-grid-model accepts with ``clock`` (odd clock: one wye-type and one delta side).

    A symmetric calculation uses the positive sequence only, where the winding types do not matter
    but the phase shift does: an inconsistent pair (e.g. ``Y``/``Y`` with a 30 degree shift, as
    pandapower allows) gets a delta second winding (or a wye one). In asymmetric mode the
    winding types shape the zero sequence, so an inconsistent vector group is an error.
    """
    delta = (first == WindingType.delta) != (second == WindingType.delta)
    if delta == bool(clock % 2):
        return first, second
    if asymmetric:
        raise ModelError(
            f"{_describe(transformer)}: phase-angle clock {clock} does not fit its winding connections "
            f"({WindingType(first).name}/{WindingType(second).name}); odd clocks need one delta winding"
        )
    if clock % 2:
        return first, (WindingType.delta if first != WindingType.delta else WindingType.wye_n)
    return first, first


def _load_parts(model: NetworkModel, load: EnergyConsumer) -> list[tuple[int, float, float]]:
    """``(pgm load type, P fraction, Q fraction)`` parts of a consumer."""
    if not load.load_response:
        return [(LoadGenType.const_power, 1.0, 1.0)]
    response = model.get(load.load_response, LoadResponseCharacteristic)
    if response.exponent_model:
        by_exponent = {0.0: LoadGenType.const_power, 1.0: LoadGenType.const_current, 2.0: LoadGenType.const_impedance}
        try:
            p_type = by_exponent[float(response.p_voltage_exponent)]
            q_type = by_exponent[float(response.q_voltage_exponent)]
        except KeyError:
            raise _unsupported(
                load, f"exponential load model with exponents {response.p_voltage_exponent}/{response.q_voltage_exponent} "
                "(only 0, 1, 2)"
            ) from None
        if p_type == q_type:
            return [(p_type, 1.0, 1.0)]
        return [(p_type, 1.0, 0.0), (q_type, 0.0, 1.0)]
    parts = [
        (LoadGenType.const_impedance, response.p_constant_impedance, response.q_constant_impedance),
        (LoadGenType.const_current, response.p_constant_current, response.q_constant_current),
        (LoadGenType.const_power, response.p_constant_power, response.q_constant_power),
    ]
    used = [part for part in parts if part[1] or part[2]]
    return used or [(LoadGenType.const_power, 1.0, 1.0)]


def _phase_rows(load: EnergyConsumer, phases: list[EnergyConsumerPhase]) -> tuple[np.ndarray, np.ndarray]:
    """Per-phase P and Q (MW, Mvar) of a consumer: its phase objects, else the total split over its phases."""
    p = np.zeros(3)
    q = np.zeros(3)
    if phases:
        for phase in phases:
            p[_PHASE_INDEX[phase.phase[0].upper()]] += phase.p_mw
            q[_PHASE_INDEX[phase.phase[0].upper()]] += phase.q_mvar
        return p, q
    connected = [_PHASE_INDEX[c] for c in load.phases.upper() if c in _PHASE_INDEX] or [0, 1, 2]
    for index in connected:
        p[index] = load.p_mw / len(connected)
        q[index] = load.q_mvar / len(connected)
    return p, q


# -- conversion ---------------------------------------------------------------------------


def to_pgm(
    model: NetworkModel, asymmetric: bool = False, *, frequency: float = 50.0, source_impedance: bool = False,
    absorb_switches: bool = True,
) -> PgmNetwork:
    """Convert ``model`` to power-grid-model and build the ``PowerGridModel`` once.

    :param asymmetric: build for asymmetric (per-phase) calculations: ``asym_load`` with
        per-phase powers and zero-sequence line data.
    :param frequency: system frequency (Hz) for line capacitances.
    :param source_impedance: model the EnergySource's Thevenin impedance (r/x, r0/x0) as the pgm
        source's ``sk``/``rx_ratio``/``z01_ratio``. Off by default: the source voltage of a DMS power
        flow is the measured bus voltage, and pandapower's ``ext_grid`` (the default solver) is an
        ideal source in ``runpp`` too; the impedance is short-circuit data.
    :raises UnsupportedNetworkError: single-phase transformer banks, single-/two-phase lines or
        split-phase loads (use the ``opendss`` solver).
    :raises ModelError: missing data (a node without nominal voltage, a line without impedance).
    """
    net = PgmNetwork(asymmetric, frequency)
    net._model_ref = weakref.ref(model)
    net.object_count = len(model)
    ids = _Ids()
    omega = 2 * math.pi * frequency

    def register(mrid: str, pgm_id: int) -> int:
        net.element_ids.setdefault(mrid, []).append(pgm_id)
        net.mrid_of[pgm_id] = mrid
        return pgm_id

    # switches in series with one line end are folded into that line end's status (exact, no link impedance)
    all_nodes = model.node_ids()
    kv = _node_nominal_kv(model, all_nodes)
    switches = model.of_type(Switch)
    line_side_switch: dict[tuple[str, int], Switch] = {}
    absorbed_switches: set[str] = set()
    switch_terminals: dict[str, list[Terminal]] = {}
    alias: dict[str, str] = {}  # absorbed node -> kept node
    if absorb_switches:
        for switch in switches:
            terminals = model.terminals(switch)
            if len(terminals) != 2:
                continue
            ends = [model.node_of(t) for t in terminals]
            for k in (1, 0):
                gone, kept = ends[k], ends[1 - k]
                if gone is None or kept is None or gone == kept or gone in alias or kept in alias:
                    continue
                at = model.equipment_at(gone)
                others = [(e, t) for e, t in at if e != switch.mrid]
                if len(at) != 2 or len(others) != 1 or not isinstance(model.objects.get(others[0][0]), ACLineSegment):
                    continue
                line = model.objects[others[0][0]]
                line_terminals = [t.mrid for t in model.terminals(line)]  # type: ignore[arg-type]
                if others[0][1] not in line_terminals[:2]:
                    continue
                side = line_terminals.index(others[0][1])
                if model.node_of(model.get(line_terminals[1 - side], Terminal)) in (gone, kept):
                    continue
                alias[gone] = kept
                line_side_switch[(line.mrid, side)] = switch
                absorbed_switches.add(switch.mrid)
                net.absorbed.append((gone, switch, k, line, side))
                switch_terminals[switch.mrid] = terminals
                break
    nodes = [n for n in all_nodes if n not in alias]
    net.kv = kv

    # nodes
    node_array = initialize_array(DatasetType.input, C.node, len(nodes))
    for index, node in enumerate(nodes):
        pgm_id = ids.take()
        register(node, pgm_id)
        net.node_index[node] = pgm_id
        obj = model.objects.get(node)
        name = (obj.name if obj is not None else "") or node
        net.node_mrids.append(node)
        net.node_names.append(name.lower())
    node_array["id"] = np.arange(len(nodes))
    node_array["u_rated"] = [kv[n] * 1e3 for n in nodes]
    net.u_rated = node_array["u_rated"].copy()
    net.input_data[C.node] = node_array

    def node_of(equipment: ConductingEquipment, count: int) -> list[tuple[int, Terminal]]:
        terminals = model.terminals(equipment)
        if len(terminals) < count:
            raise ModelError(f"{_describe(equipment)} has {len(terminals)} terminals, needs {count}")
        result = []
        for terminal in terminals[:count]:
            node = model.node_of(terminal)
            if node is None:
                raise ModelError(f"{_describe(equipment)}: terminal {terminal.mrid!r} is not connected to a node")
            if not _three_phase(terminal.phases) and not isinstance(equipment, EnergyConsumer):
                raise _unsupported(equipment, f"connection with phases {terminal.phases!r} (terminal {terminal.mrid!r})")
            result.append((net.node_index[alias.get(node, node)], terminal))
        return result

    def table(component: ComponentType, rows: list[dict[str, Any]]) -> np.ndarray:
        array = initialize_array(DatasetType.input, component, len(rows))
        for column in array.dtype.names:
            if rows and column in rows[0]:
                array[column] = [row[column] for row in rows]
        net.input_data[component] = array
        return array

    # lines
    lines = [line for line in model.of_type(ACLineSegment)]
    line_rows, line_terms = [], []
    for line in lines:
        if not _three_phase(line.phases):
            raise _unsupported(line, f"a line with phases {line.phases!r}")
        (a, ta), (b, tb) = node_of(line, 2)
        p = _line_params(model, line)
        if asymmetric:
            for key, fallback in (("r0", "r1"), ("x0", "x1"), ("b0", "b1")):
                if math.isnan(p[key]):
                    p[key] = p[fallback]
        sa, sb = line_side_switch.get((line.mrid, 0)), line_side_switch.get((line.mrid, 1))
        line_rows.append({
            "id": register(line.mrid, ids.take()), "from_node": a, "to_node": b,
            "from_status": _status(line, ta) * _switch_closed(sa, switch_terminals.get(sa.mrid, []) if sa else ()),
            "to_status": _status(line, tb) * _switch_closed(sb, switch_terminals.get(sb.mrid, []) if sb else ()),
            "r1": p["r1"], "x1": p["x1"], "c1": p["b1"] / omega, "tan1": 0.0,
            "r0": p["r0"], "x0": p["x0"], "c0": p["b0"] / omega, "tan0": 0.0,
            "i_n": line.max_i_ka * 1e3 if line.max_i_ka else math.nan,
        })
        line_terms.append((line, ta, tb, sa, sb))
    if line_rows:
        table(C.line, line_rows)
        net.line_row = {line.mrid: row for row, line in enumerate(lines)}
        net.branches[C.line] = [(line.mrid, line.name, type(line).__name__) for line in lines]
        line_objs = [t[0] for t in line_terms]
        from_terms, to_terms = [t[1] for t in line_terms], [t[2] for t in line_terms]
        # the folded switches sit on line ends: their states (read once per update, shared with
        # ``absorbed_closed``) close or open that end
        side_rows = [
            (np.array([net.line_row[a[3].mrid] for a in net.absorbed if a[4] == k], dtype=np.int64),
             np.array([pos for pos, a in enumerate(net.absorbed) if a[4] == k], dtype=np.int64))
            for k in (0, 1)
        ]
        ones = np.ones(len(lines), dtype=np.int8)
        ones.flags.writeable = False

        def line_values(objs=line_objs, ends=(from_terms, to_terms), switched=side_rows):
            closed = net._closed_now
            if all([obj.in_service for obj in objs]) and all([t.connected for t in ends[0]]) and all([t.connected for t in ends[1]]):
                result = {}
                for column, (rows, positions) in zip(("from_status", "to_status"), switched, strict=True):
                    if len(rows):
                        status = ones.copy()
                        status[rows] = closed[positions]
                    else:
                        status = ones
                    result[column] = status
                return result
            in_service = _in_service_flags(objs)
            result = {}
            for column, terminals, (rows, positions) in zip(("from_status", "to_status"), ends, switched, strict=True):
                status = in_service & _connected_flags(terminals)
                if len(rows):
                    status[rows] &= closed[positions]
                result[column] = status.astype(np.int8)
            return result

        net._updaters.append((C.line, line_values))

    # switches -> links
    assert all(isinstance(s, SWITCH_TYPES) for s in switches)
    link_rows, link_terms = [], []
    for switch in switches:
        if switch.mrid in absorbed_switches:
            continue
        (a, ta), (b, tb) = node_of(switch, 2)
        closed = int(not switch.open)
        link_rows.append({
            "id": register(switch.mrid, ids.take()), "from_node": a, "to_node": b,
            "from_status": closed * _status(switch, ta), "to_status": closed * _status(switch, tb),
        })
        link_terms.append((switch, ta, tb))
    if link_rows:
        table(C.link, link_rows)
        net.branches[C.link] = [(s.mrid, s.name, type(s).__name__) for s, _, _ in link_terms]

        def link_values(terms=link_terms):
            closed = [0 if s.open else 1 for s, _, _ in terms]
            return {
                "from_status": [c * _status(s, a) for c, (s, a, _) in zip(closed, terms, strict=True)],
                "to_status": [c * _status(s, b) for c, (s, _, b) in zip(closed, terms, strict=True)],
            }

        net._updaters.append((C.link, link_values))

    # transformers
    two, three = [], []
    for transformer in model.of_type(PowerTransformer):
        ends = model.ends(transformer)
        tanks = {end.transformer_tank for end in ends if end.transformer_tank}
        if len(tanks) > 1 or any(e.connection.strip().upper() == "I" or not _three_phase(e.phases) for e in ends):
            raise _unsupported(transformer, "a bank of single-phase transformers")
        if len(ends) == 2:
            two.append((transformer, ends))
        elif len(ends) == 3:
            three.append((transformer, ends))
        else:
            raise ModelError(f"{_describe(transformer)} has {len(ends)} PowerTransformerEnds (need 2 or 3)")

    def tap_data(ends: Sequence[PowerTransformerEnd]) -> tuple[dict[str, Any], Any]:
        for side, end in enumerate(ends):
            changer = model.tap_changer(end)
            if changer is None:
                continue
            neutral_kv = changer.neutral_u_kv or end.rated_u_kv
            low, high = sorted((changer.low_step, changer.high_step))
            return {
                "tap_side": side, "tap_pos": int(min(max(round(changer.step), low), high)),
                "tap_min": low, "tap_max": high, "tap_nom": min(max(changer.neutral_step, low), high),
                "tap_size": abs(changer.step_voltage_increment_percent) / 100 * neutral_kv * 1e3,
            }, changer
        return {"tap_side": 0, "tap_pos": 0, "tap_min": 0, "tap_max": 0, "tap_nom": 0, "tap_size": 0.0}, None

    def end_node(transformer: PowerTransformer, end: PowerTransformerEnd) -> tuple[int, Terminal]:
        terminal = _end_terminal(model, end)
        node = model.node_of(terminal) if terminal else None
        if node is None:
            raise ModelError(f"{_describe(end)} of {_describe(transformer)} has no connected terminal")
        return net.node_index[node], terminal  # type: ignore[return-value]

    def clamp_tap(changer, low, high) -> int:
        return int(min(max(round(changer.step), low), high))

    if two:
        rows, changers = [], []
        for transformer, (e1, e2) in two:
            u1, u2 = e1.rated_u_kv * 1e3, e2.rated_u_kv * 1e3
            sn = (e1.rated_s_mva or e2.rated_s_mva) * 1e6
            if not (u1 > 0 and u2 > 0 and sn > 0):
                raise ModelError(f"{_describe(transformer)}: ends need rated_u_kv and rated_s_mva")
            z = complex(e1.r_ohm, e1.x_ohm) + complex(e2.r_ohm, e2.x_ohm) * (u1 / u2) ** 2
            y = (complex(e1.g_us, e1.b_us) + complex(e2.g_us, e2.b_us) * (u2 / u1) ** 2) * 1e-6
            (a, ta), (b, tb) = end_node(transformer, e1), end_node(transformer, e2)
            taps, changer = tap_data((e1, e2))
            clock = (e2.phase_angle_clock - e1.phase_angle_clock) % 12
            winding_from, winding_to = _consistent_windings(transformer, _winding(e1), _winding(e2), clock, asymmetric)
            rows.append({
                "id": register(transformer.mrid, ids.take()), "from_node": a, "to_node": b,
                "from_status": _status(transformer, ta), "to_status": _status(transformer, tb),
                "u1": u1, "u2": u2, "sn": sn, "uk": abs(z) * sn / u1**2, "pk": z.real * sn**2 / u1**2,
                "i0": abs(y) * u1**2 / sn, "p0": y.real * u1**2,
                "winding_from": winding_from, "winding_to": winding_to, "clock": clock,
                **taps,
            })
            changers.append((transformer, ta, tb, changer, taps["tap_min"], taps["tap_max"], taps["tap_pos"]))
        table(C.transformer, rows)
        net.branches[C.transformer] = [(t.mrid, t.name, type(t).__name__) for t, _ in two]
        net._updaters.append((C.transformer, lambda changers=changers: {
            "from_status": [_status(t, a) for t, a, *_ in changers],
            "to_status": [_status(t, b) for t, _, b, *_ in changers],
            "tap_pos": [clamp_tap(c, lo, hi) if c is not None else pos for _, _, _, c, lo, hi, pos in changers],
        }))

    if three:
        rows, changers = [], []
        for transformer, ends in three:
            u = [e.rated_u_kv * 1e3 for e in ends]
            sn = [e.rated_s_mva * 1e6 for e in ends]
            if not all(v > 0 for v in u + sn):
                raise ModelError(f"{_describe(transformer)}: ends need rated_u_kv and rated_s_mva")
            z = [complex(e.r_ohm, e.x_ohm) * (u[0] / u[i]) ** 2 for i, e in enumerate(ends)]
            y = sum(complex(e.g_us, e.b_us) * (u[i] / u[0]) ** 2 for i, e in enumerate(ends)) * 1e-6
            terminals = [end_node(transformer, e) for e in ends]
            taps, changer = tap_data(ends)
            row = {
                "id": register(transformer.mrid, ids.take()),
                "u1": u[0], "u2": u[1], "u3": u[2], "sn_1": sn[0], "sn_2": sn[1], "sn_3": sn[2],
                "i0": abs(y) * u[0] ** 2 / sn[0], "p0": y.real * u[0] ** 2,
                "winding_1": _winding(ends[0]), "winding_2": _winding(ends[1]), "winding_3": _winding(ends[2]),
                "clock_12": (ends[1].phase_angle_clock - ends[0].phase_angle_clock) % 12,
                "clock_13": (ends[2].phase_angle_clock - ends[0].phase_angle_clock) % 12,
                **taps,
            }
            for i, (node, terminal) in enumerate(terminals, start=1):
                row[f"node_{i}"] = node
                row[f"status_{i}"] = _status(transformer, terminal)
            for i, j in ((0, 1), (0, 2), (1, 2)):
                s = min(sn[i], sn[j])
                zij = z[i] + z[j]
                row[f"uk_{i + 1}{j + 1}"] = abs(zij) * s / u[0] ** 2
                row[f"pk_{i + 1}{j + 1}"] = zij.real * s**2 / u[0] ** 2
            rows.append(row)
            changers.append((transformer, [t for _, t in terminals], changer, taps["tap_min"], taps["tap_max"], taps["tap_pos"]))
        table(C.three_winding_transformer, rows)
        net.branches[C.three_winding_transformer] = [(t.mrid, t.name, type(t).__name__) for t, _ in three]
        net._updaters.append((C.three_winding_transformer, lambda changers=changers: {
            **{f"status_{i + 1}": [_status(t, ts[i]) for t, ts, *_ in changers] for i in range(3)},
            "tap_pos": [clamp_tap(c, lo, hi) if c is not None else pos for _, _, c, lo, hi, pos in changers],
        }))

    # loads
    consumers = model.of_type(EnergyConsumer)
    phase_objects: dict[str, list[EnergyConsumerPhase]] = {}
    for phase in model.of_type(EnergyConsumerPhase):
        phase_objects.setdefault(phase.consumer, []).append(phase)
    load_rows, load_plan = [], []
    for load in consumers:
        phases = phase_objects.get(load.mrid, [])
        if any(p.phase[:1].upper() not in _PHASE_INDEX for p in phases) or load.phases.lower().startswith("s"):
            raise _unsupported(load, "a split-phase (centre-tapped secondary) load")
        ((node, terminal),) = node_of(load, 1)
        if asymmetric and load.connection.strip().upper() == "D":
            p, _ = _phase_rows(load, phases)
            if not np.allclose(p, p.mean()):
                raise _unsupported(load, "an unbalanced delta-connected load")
        for load_type, fp, fq in _load_parts(model, load):
            load_rows.append({"id": register(load.mrid, ids.take()), "node": node, "status": _status(load, terminal), "type": load_type})
            load_plan.append((load, terminal, phases, fp, fq))
    load_component = C.asym_load if asymmetric else C.sym_load
    if load_rows:
        array = table(load_component, load_rows)

        load_objs = [row[0] for row in load_plan]
        load_terms = [row[1] for row in load_plan]
        fp = np.array([row[3] for row in load_plan]) * 1e6
        fq = np.array([row[4] for row in load_plan]) * 1e6
        phased = np.array([i for i, row in enumerate(load_plan) if row[2]], dtype=np.int64)
        phased_plan = [load_plan[i] for i in phased]
        share = np.zeros((len(load_plan), 3))  # split of a total over the connected phases
        for i, (load, *_rest) in enumerate(load_plan):
            connected = [_PHASE_INDEX[c] for c in load.phases.upper() if c in _PHASE_INDEX] or [0, 1, 2]
            share[i, connected] = 1.0 / len(connected)

        all_on = np.ones(len(load_objs), dtype=np.int8)
        all_on.flags.writeable = False

        def load_values():
            n = len(load_objs)
            if all([load.in_service for load in load_objs]) and all([t.connected for t in load_terms]):
                status = all_on  # the usual case: one pass over each list, no numpy call
            else:
                status = (_in_service_flags(load_objs) & _connected_flags(load_terms)).astype(np.int8)
            p_total = np.fromiter([load.p_mw for load in load_objs], float, n)  # a list comprehension reads
            q_total = np.fromiter([load.q_mvar for load in load_objs], float, n)  # faster than map(attrgetter)
            if asymmetric:
                p = p_total[:, None] * share
                q = q_total[:, None] * share
                for i, (load, _, phases, _, _) in zip(phased, phased_plan, strict=True):
                    p[i], q[i] = _phase_rows(load, phases)
                return {"status": status, "p_specified": p * fp[:, None], "q_specified": q * fq[:, None]}
            for i, (load, _, phases, _, _) in zip(phased, phased_plan, strict=True):
                if not (load.p_mw or load.q_mvar):
                    p_total[i] = sum(x.p_mw for x in phases)
                    q_total[i] = sum(x.q_mvar for x in phases)
            return {"status": status, "p_specified": p_total * fp, "q_specified": q_total * fq}

        for attribute, values in load_values().items():
            array[attribute] = values
        net._updaters.append((load_component, load_values))

    # generation
    generators = [g for g in model.of_type(ConductingEquipment) if isinstance(g, PowerElectronicsConnection | SynchronousMachine)]
    if generators:
        gen_terms = [(g, node_of(g, 1)[0]) for g in generators]
        array = table(C.sym_gen, [
            {"id": register(g.mrid, ids.take()), "node": node, "type": LoadGenType.const_power} for g, (node, _) in gen_terms
        ])

        def gen_values(terms=gen_terms):
            return {
                "status": [_status(g, t) for g, (_, t) in terms],
                "p_specified": np.array([g.p_mw for g, _ in terms]) * 1e6,
                "q_specified": np.array([g.q_mvar for g, _ in terms]) * 1e6,
            }

        for attribute, values in gen_values().items():
            array[attribute] = values
        net._updaters.append((C.sym_gen, gen_values))

    # shunts
    shunts = model.of_type(LinearShuntCompensator)
    if asymmetric:
        shunt_phases: dict[str, list[Any]] = {}
        for phase in model.of_type(LinearShuntCompensatorPhase):
            shunt_phases.setdefault(phase.shunt_compensator, []).append(phase)
        for shunt in shunts:
            values = {(p.b_per_section_us * p.sections, p.g_per_section_us * p.sections) for p in shunt_phases.get(shunt.mrid, [])}
            if len(values) > 1 or (values and len(shunt_phases[shunt.mrid]) < 3):
                raise _unsupported(shunt, "an unbalanced (per-phase) shunt compensator")
    if shunts:
        shunt_terms = [(s, node_of(s, 1)[0]) for s in shunts]
        array = table(C.shunt, [{"id": register(s.mrid, ids.take()), "node": node} for s, (node, _) in shunt_terms])

        def shunt_values(terms=shunt_terms):
            g = np.array([s.g_per_section_us * s.sections for s, _ in terms]) * 1e-6
            b = np.array([s.b_per_section_us * s.sections for s, _ in terms]) * 1e-6
            wye = np.array([s.connection.strip().upper() != "D" for s, _ in terms], dtype=float)
            return {"status": [_status(s, t) for s, (_, t) in terms], "g1": g, "b1": b, "g0": g * wye, "b0": b * wye}

        for attribute, values in shunt_values().items():
            array[attribute] = values
        net._updaters.append((C.shunt, shunt_values))

    # sources
    sources = model.of_type(EnergySource)
    if not sources:
        raise ModelError(f"model {model.name!r} has no EnergySource (slack)")
    source_terms = [(s, node_of(s, 1)[0]) for s in sources]
    rows = []
    for source, (node, _) in source_terms:
        u_nom = (source.nominal_kv or kv[net.node_mrids[node]]) * 1e3
        z1 = complex(source.r_ohm, source.x_ohm)
        row = {"id": register(source.mrid, ids.take()), "node": node}
        if source_impedance and abs(z1) > 0:
            z0 = complex(source.r0_ohm, source.x0_ohm)
            row.update(sk=u_nom**2 / abs(z1), rx_ratio=source.r_ohm / source.x_ohm if source.x_ohm else 1e6,
                       z01_ratio=abs(z0) / abs(z1) if abs(z0) > 0 else 1.0)
        else:
            row.update(sk=IDEAL_SOURCE_SK_VA, rx_ratio=0.1, z01_ratio=1.0)
        rows.append(row)
    array = table(C.source, rows)

    def source_values(terms=source_terms):
        return {
            "status": [_status(s, t) for s, (_, t) in terms],
            "u_ref": [s.voltage_kv * 1e3 / net.u_rated[node] if s.voltage_kv > 0 else 1.0 for s, (node, _) in terms],
            "u_ref_angle": [math.radians(s.voltage_angle_deg) for s, _ in terms],
        }

    for attribute, values in source_values().items():
        array[attribute] = values
    net._updaters.append((C.source, source_values))

    if C.line in net.input_data:
        net.line_status = (net.input_data[C.line]["from_status"].copy(), net.input_data[C.line]["to_status"].copy())
    net._absorbed_terminals = [switch_terminals[a[1].mrid] for a in net.absorbed]
    net._absorbed_switches = [a[1] for a in net.absorbed]
    net._absorbed_flat_terminals = [t for terminals in net._absorbed_terminals for t in terminals]
    net._absorbed_owner = [pos for pos, terminals in enumerate(net._absorbed_terminals) for _ in terminals]
    net.absorbed_closed = np.array([_switch_closed(a[1], t) for a, t in zip(net.absorbed, net._absorbed_terminals, strict=True)], dtype=bool)
    for node, *_ in net.absorbed:
        obj = model.objects.get(node)
        net.absorbed_names.append(((obj.name if obj is not None else "") or node).lower())
    net.model = PowerGridModel(net.input_data, system_frequency=frequency)
    return net
