"""Simulator type ``iec61850-sv``: a merging unit publishing the twin's bus voltages as
IEC 61850-9-2LE Sampled Values on a network interface.

Every cycle (1/50 s) the server takes the phase-to-neutral voltage magnitude and angle of its
bus from the twin's power flow (``GridTwin``), synthesises the three phase voltages (and their
sum as UN, currents zero) at ``samples_per_cycle`` samples per cycle and publishes one frame per
sample, the sample counter wrapping at one second and counting from the top of the second
(the angles are referred to the second, as a PMU's). Publishing runs in a thread of its own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from dms_hookspecs import REQUIRED, Setting, SettingsSchema, SimulatorServer, TwinAPI

__all__ = ["SvMergingUnit"]

log = logging.getLogger("leitstand.iec61850.sv")


class SvMergingUnit(SimulatorServer):
    settings_schema = SettingsSchema(
        (
            Setting("interface", str, REQUIRED, "network interface to publish on"),
            Setting("bus", str, REQUIRED, "node (mRID or name) whose voltages the merging unit measures"),
            Setting("app_id", int, 0x4000, "APPID of the stream"),
            Setting("sv_id", str, "MU01", "svID"),
            Setting("samples_per_cycle", int, 80, "samples per cycle (9-2LE: 80)"),
            Setting("nominal_hz", int, 50, "nominal frequency"),
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any], twin: TwinAPI) -> None:
        super().__init__(name, settings, twin)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cycles = 0

    def phasor(self) -> tuple[float, float]:
        """``(magnitude V phase-to-neutral, angle rad)`` of the bus in the twin's power flow."""
        network = getattr(self.twin, "network", None)
        model = getattr(self.twin, "model", None)
        if network is None or model is None:
            raise TypeError(f"simulator server {self.name!r}: needs a GridTwin (power flow), not {type(self.twin).__name__}")
        wanted = self.settings["bus"]
        node = wanted if wanted in network.bus_of else next(
            (n for n in network.bus_of if (model.objects[n].name or "").lower() == wanted.lower()), None)
        if node is None:
            raise KeyError(f"simulator server {self.name!r}: no node {wanted!r} in the twin")
        net = network.net
        bus = network.bus_of[node]
        magnitude = float(net.res_bus.at[bus, "vm_pu"]) * float(net.bus.at[bus, "vn_kv"]) * 1000 / math.sqrt(3)
        angle = math.radians(float(net.res_bus.at[bus, "va_degree"]))
        return (magnitude, angle) if math.isfinite(magnitude) and math.isfinite(angle) else (0.0, 0.0)

    async def start(self) -> None:
        from .sv import SvPublisher

        self.phasor()  # fail at start on a wrong bus or twin
        settings = self.settings
        per_second = settings["samples_per_cycle"] * settings["nominal_hz"]
        self._publisher = SvPublisher(settings["interface"], app_id=settings["app_id"], sv_id=settings["sv_id"], samples_per_second=per_second)
        self._thread = threading.Thread(target=self._run, name=f"sv:{self.name}", daemon=True)
        self._thread.start()
        log.info("merging unit %r: Sampled Values %s of %s on %s", self.name, settings["sv_id"], settings["bus"], settings["interface"])

    def _run(self) -> None:
        settings = self.settings
        per_cycle, hz = settings["samples_per_cycle"], settings["nominal_hz"]
        per_second = per_cycle * hz
        cycle = np.arange(per_cycle)
        start = math.ceil(time.time() * hz) / hz
        while not self._stop.is_set():
            due = start + self.cycles / hz
            delay = due - time.time()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -0.5:  # fell behind (a busy machine): skip ahead, the counter follows the clock
                self.cycles += int(-delay * hz)
                continue
            magnitude, angle = self.phasor()
            first = round((due % 1) * per_second) % per_second
            counters = (first + cycle) % per_second
            theta = 2 * np.pi * counters / per_cycle
            peak = magnitude * math.sqrt(2)
            phases = [peak * np.cos(theta + angle + shift) for shift in (0.0, -2 * math.pi / 3, 2 * math.pi / 3)]
            counts = np.zeros((per_cycle, 8), dtype=np.int64)
            for k, wave in enumerate(phases):
                counts[:, 4 + k] = np.round(wave / 0.01)  # 10 mV per count (9-2LE)
            counts[:, 7] = counts[:, 4:7].sum(axis=1)
            for smp_cnt, row in zip(counters.tolist(), counts, strict=True):
                self._publisher.publish(int(smp_cnt), row)
            self.cycles += 1

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        publisher = getattr(self, "_publisher", None)
        if publisher is not None:
            publisher.close()
