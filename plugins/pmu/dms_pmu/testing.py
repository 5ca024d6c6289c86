"""Test helpers: two simulated PMUs on a static twin, and a kernel deployment for the source.

Used by the plugin's tests; not needed in production.
"""

from __future__ import annotations

import json

from dms_hookspecs import PointSpec
from dms_kernel.testing import free_port, wait_until  # re-exported for the tests and bench/pmu.py
from dms_simulator import StaticTwin

from .server import C37118Server

__all__ = ["free_port", "wait_until", "Rig"]

TWIN_POINTS = [PointSpec(n) for n in ("n1/U", "n1/ang", "n2/U", "n2/ang")]
INITIAL = {"n1/U": 20.0, "n1/ang": 0.0, "n2/U": 19.6, "n2/ang": -1.5}


class Rig:
    """Two PMU servers (``pmu1`` IDCODE 1, ``pmu2`` IDCODE 2) on a static twin."""

    def __init__(self, rate: int = 50, **server_settings) -> None:
        self.twin = StaticTwin(TWIN_POINTS, INITIAL)
        self.servers = {}
        for index, node in ((1, "n1"), (2, "n2")):
            settings = {"port": free_port(), "id_code": index, "station": f"PMU{index}", "rate": rate, "seed": index,
                        "phasors": [{"name": "V1", "magnitude_point": f"{node}/U", "angle_point": f"{node}/ang"}], **server_settings}
            self.servers[f"pmu{index}"] = C37118Server(f"pmu{index}", settings, self.twin)

    async def start(self) -> None:
        for server in self.servers.values():
            await server.start()

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

    def deployment(self, **settings) -> str:
        pmus = [{"name": name, "host": "127.0.0.1", "port": s.settings["port"], "id_code": s.settings["id_code"], "phasors": ["V1"],
                 "magnitude_scale": 0.001, "magnitude_unit": "kV"} for name, s in self.servers.items()]
        options = {"wait_window_s": 0.1, "stall_timeout_s": 0.5, "data_timeout_s": 1.0, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
                   "event_on_delay_s": 0.2, **settings}
        inline = ", ".join(f"{key} = {json.dumps(value)}" for key, value in options.items())
        tables = ", ".join("{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in p.items()) + " }" for p in pmus)
        return f"""
[deployment]
name = "pmu-test"
[[sources]]
name = "pdc"
type = "c37118"
settings = {{ pmus = [{tables}], {inline} }}
[[sinks]]
name = "log"
type = "list"
"""
