"""The grid twin: a pandapower power flow of the deployment's network over (compressed) time.

Loads follow a day profile, PV a clear-sky profile, both with a little noise; every step the
power flow is solved and the model's SCADA measurements (``dms_kernel.model.scada``) are
computed from its results — what field devices would measure. Controls change the model
(breaker position, tap step, set-points) and the twin re-solves at once, so a command shows
up in the telemetry within one power flow.

Faults and outages for the FLISR and outage work: :meth:`GridTwin.inject_fault` trips the
nearest breaker upstream of the faulted element (and keeps the element out of service until
:meth:`clear_fault`); :meth:`meter_outage` marks points invalid (a meter that lost supply).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Iterable

import numpy as np
import pandapower as pp

from dms_hookspecs import INVALID
from dms_kernel.model import (
    ACLineSegment,
    Breaker,
    ConductingEquipment,
    EnergyConsumer,
    EnergySource,
    Measurement,
    NetworkModel,
    PowerElectronicsConnection,
    PowerTransformer,
    Recloser,
    Switch,
    Terminal,
)
from dms_kernel.model.scada import add_scada_measurements, measurement_points
from dms_kernel.model.topology import TopologyProcessor

from .twin import StaticTwin

__all__ = ["GridTwin", "load_profile", "pv_profile"]

log = logging.getLogger("leitstand.simulator")


def load_profile(hour: float) -> float:
    """Relative load over the day (standard household/commercial mix), 0.45 … 1.0."""
    return 0.45 + 0.25 * math.exp(-((hour - 8) / 2.0) ** 2) + 0.35 * math.exp(-((hour - 19) / 2.5) ** 2) + 0.15 * math.sin(math.pi * hour / 24)


def pv_profile(hour: float) -> float:
    """Relative PV infeed on a clear day (sunrise 6 h, sunset 20 h)."""
    return max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0


class GridTwin(StaticTwin):
    """A twin of ``model`` that runs a pandapower power flow every step.

    :param model: the network model (SCADA measurements are added if it has none).
    :param speed: simulated seconds per wall-clock second (900 = a day in 96 s).
    :param period_s: wall-clock seconds between steps.
    :param start_hour: simulated time of day at start.
    :param noise: relative standard deviation of load noise.
    :param seed: random seed.
    """

    def __init__(
        self,
        model: NetworkModel,
        *,
        speed: float = 60.0,
        period_s: float = 1.0,
        start_hour: float = 12.0,
        noise: float = 0.02,
        seed: int | None = None,
    ) -> None:
        from dms_pandapower.convert import to_pandapower

        if not model.of_type(Measurement):
            add_scada_measurements(model, meters=True)
        self.model = model
        self.speed = speed
        self.period_s = period_s
        self.noise = noise
        self._rng = np.random.default_rng(seed)
        self.sim_time = dt.datetime.combine(dt.date.today(), dt.time()) + dt.timedelta(hours=start_hour)
        self.network = to_pandapower(model)
        self._loads = model.of_type(EnergyConsumer)
        self._pv = model.of_type(PowerElectronicsConnection)
        self._nominal_load = {c.mrid: (c.p_mw, c.q_mvar) for c in self._loads}
        self._nominal_pv = {g.mrid: g.p_mw for g in self._pv}
        self._measurements = [m for m in model.of_type(Measurement)]
        self.faults: dict[str, str] = {}  # faulted element -> tripped switch
        self._fault_path: set[str] = set()  # switches whose fault passage indicator picked up
        self.steps = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        super().__init__(measurement_points(model))
        self._apply_profiles()
        self._solve_and_publish()

    # -- stepping --------------------------------------------------------------------------

    def _apply_profiles(self) -> None:
        hour = self.sim_time.hour + self.sim_time.minute / 60
        load_factor, pv_factor = load_profile(hour), pv_profile(hour)
        for load in self._loads:
            p, q = self._nominal_load[load.mrid]
            jitter = 1.0 + self.noise * float(self._rng.standard_normal())
            load.p_mw, load.q_mvar = p * load_factor * jitter, q * load_factor * jitter
        for pv in self._pv:
            pv.p_mw = self._nominal_pv[pv.mrid] * pv_factor

    def _solve(self) -> bool:
        self.network.update(self.model)
        try:
            pp.runpp(self.network.net, calculate_voltage_angles=True, numba=True)
        except Exception as exc:  # noqa: BLE001 - a diverged twin reports invalid values, keeps running
            log.warning("twin power flow did not converge at %s: %s", self.sim_time, exc)
            return False
        return True

    def _solve_and_publish(self) -> None:
        """Solve and publish every measurement; de-energised or unsolved values go out invalid."""
        converged = self._solve()
        good: dict[str, float] = {}
        dead: dict[str, float] = {}
        for measurement in self._measurements:
            value = self._measure(measurement) if converged else math.nan
            if value is None:
                continue
            if math.isnan(value):
                dead[measurement.point_name] = 0.0
            else:
                good[measurement.point_name] = value
        stamp = time.time()
        if good:
            self.set_many(good, 0, stamp)
        if dead:
            self.set_many(dead, INVALID.to_bits(), stamp)

    def step(self) -> None:
        """Advance simulated time by ``period_s * speed`` seconds, then solve and publish."""
        self.sim_time += dt.timedelta(seconds=self.period_s * self.speed)
        self._apply_profiles()
        self._solve_and_publish()
        self.steps += 1

    async def run(self) -> None:
        """Step every ``period_s`` until cancelled (power flow in a worker thread)."""
        while True:
            await asyncio.sleep(self.period_s)
            async with self._lock:
                await asyncio.to_thread(self.step)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="twin")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # -- measuring ---------------------------------------------------------------------------

    def _equipment(self, measurement: Measurement) -> ConductingEquipment | None:
        if measurement.terminal and measurement.terminal in self.model:
            terminal = self.model.get(measurement.terminal, Terminal)
            return self.model.get(terminal.conducting_equipment, ConductingEquipment)
        if measurement.power_system_resource in self.model:
            resource = self.model.get(measurement.power_system_resource)
            return resource if isinstance(resource, ConductingEquipment) else None
        return None

    def _measure(self, measurement: Measurement) -> float | None:
        """The value a field device would report for ``measurement``; NaN if de-energised."""
        equipment = self._equipment(measurement)
        kind = measurement.measurement_type
        net = self.network.net
        if equipment is None:
            return None
        if kind == "SwitchPosition" and isinstance(equipment, Switch):
            return 1.0 if equipment.open else 2.0
        if kind == "FaultPassageIndicator" and isinstance(equipment, Switch):
            return 1.0 if equipment.mrid in self._fault_path else 0.0
        if kind == "TapPosition" and isinstance(equipment, PowerTransformer):
            for end in self.model.ends(equipment):
                changer = self.model.tap_changer(end)
                if changer is not None:
                    return float(changer.step)
            return None
        scale = _unit_scale(measurement)
        if kind in ("LineToLineVoltage", "PhaseVoltage"):  # at the measurement's terminal (an RTU's voltage transformer)
            terminal = self.model.objects.get(measurement.terminal) if measurement.terminal else None
            node = self.model.node_of(terminal) if terminal is not None else (self.model.nodes_of(equipment) or [None])[0]
            bus = self.network.bus_of.get(node) if node is not None else None
            if bus is None:
                return None
            u_kv = float(net.res_bus.at[bus, "vm_pu"] * net.bus.at[bus, "vn_kv"])
            return (u_kv / math.sqrt(3) if kind == "PhaseVoltage" else u_kv) / scale
        table_index = self.network.element_index.get(equipment.mrid)
        if table_index is None:
            return None
        table, index = table_index
        column = {"ThreePhaseActivePower": "p", "ThreePhaseReactivePower": "q"}.get(kind)
        if column is None:
            return None
        result = net[f"res_{table}"]
        if table == "trafo":
            value = result.at[index, f"{column}_hv_mw" if column == "p" else "q_hv_mvar"]
        elif table == "line":
            value = result.at[index, f"{column}_from_mw" if column == "p" else "q_from_mvar"]
        elif table in ("sgen", "load", "storage"):
            value = result.at[index, "p_mw" if column == "p" else "q_mvar"]
        else:
            return None
        return float(value) / scale

    # -- controls and events -------------------------------------------------------------------

    async def operate(self, point: str, value: float) -> tuple[bool, str]:
        accepted, reason = await super().operate(point, value)
        if not accepted:
            return accepted, reason
        measurement = next((m for m in self._measurements if m.point_name == point), None)
        equipment = self._equipment(measurement) if measurement is not None else None
        async with self._lock:
            if isinstance(equipment, Switch):
                equipment.open = int(value) == 1
            elif isinstance(equipment, PowerTransformer):
                for end in self.model.ends(equipment):
                    changer = self.model.tap_changer(end)
                    if changer is not None:
                        if not changer.low_step <= value <= changer.high_step:
                            return False, f"tap position {value:g} outside {changer.low_step}..{changer.high_step}"
                        changer.step = value
                        break
            await asyncio.to_thread(self._solve_and_publish)
        return True, "executed"

    def inject_fault(self, element: str) -> str | None:
        """A permanent fault on ``element`` (mRID or name): the nearest breaker or recloser
        upstream trips and the element stays out of service. Returns the tripped switch."""
        target = self._find(element)
        topology = TopologyProcessor(self.model)
        upstream = topology.trace_upstream(target.mrid)
        tripped = None
        for mrid in upstream.equipment:
            obj = self.model.objects.get(mrid)
            if isinstance(obj, Breaker | Recloser) and not obj.open:
                tripped = obj
                break
        target.in_service = False
        if tripped is not None:
            tripped.open = True
        self.faults[target.mrid] = tripped.mrid if tripped else ""
        # fault passage indicators on the path from the source to the fault pick up (latched)
        self._fault_path.update(m for m in upstream.equipment if isinstance(self.model.objects.get(m), Switch))
        log.warning("fault injected on %s; tripped %s", target.name or target.mrid, tripped.name if tripped else "nothing")
        self._solve_and_publish()
        return tripped.mrid if tripped else None

    def clear_fault(self, element: str) -> None:
        target = self._find(element)
        target.in_service = True
        self.faults.pop(target.mrid, None)
        if not self.faults:
            self._fault_path.clear()  # indicators reset
        self._solve_and_publish()

    def meter_outage(self, points: Iterable[str]) -> None:
        self.invalidate(points)

    def _find(self, element: str) -> ConductingEquipment:
        if element in self.model:
            return self.model.get(element, ConductingEquipment)
        return self.model.by_name(element, ACLineSegment)


def _unit_scale(measurement: Measurement) -> float:
    """How many MW/kV one unit of the measurement is (inverse of the point's scaling)."""
    from dms_kernel.model.live import unit_factor

    target = "kV" if "Voltage" in measurement.measurement_type else "MW"
    return unit_factor(measurement, target)

