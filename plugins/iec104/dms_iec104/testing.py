"""Test and benchmark helpers: a twin served by the IEC 104 simulator server, and a kernel deployment for the source.

Used by the plugin's tests and by ``bench/protocols/iec104.py``; not needed in production.
"""

from __future__ import annotations

import json
from pathlib import Path

from dms_hookspecs import PointKind, PointSpec
from dms_kernel.testing import free_port, wait_until  # re-exported for the tests and benches
from dms_simulator import StaticTwin

from .server import Iec104Server

__all__ = ["POINT_MAP", "TWIN_POINTS", "INITIAL", "free_port", "wait_until", "deployment", "Rig"]

POINT_MAP = """\
point,address,kind,scale,sbo
rtu/U,1:1001,analog,1,
rtu/P,1:1002,analog,0.001,
rtu/Alarm,1:1501,binary,1,
rtu/CB1,1:2001,double,1,false
rtu/CB2,1:2002:12002,double,1,true
rtu/Tap,2:3001,step,1,
rtu/SP,2:4001,setpoint,1,true
"""

TWIN_POINTS = [
    PointSpec("rtu/U", unit="kV"),
    PointSpec("rtu/P", unit="MW"),
    PointSpec("rtu/Alarm", PointKind.BINARY),
    PointSpec("rtu/CB1", PointKind.DOUBLE, controllable=True),
    PointSpec("rtu/CB2", PointKind.DOUBLE, controllable=True, select_before_operate=True),
    PointSpec("rtu/Tap", PointKind.STEP, controllable=True),
    PointSpec("rtu/SP", PointKind.SETPOINT, controllable=True),
]
INITIAL = {"rtu/U": 20.1, "rtu/P": 1.25, "rtu/Alarm": 0, "rtu/CB1": 2, "rtu/CB2": 2, "rtu/Tap": 3, "rtu/SP": 10.0}


def deployment(port: int, points_file: Path, **settings) -> str:
    options = {
        "host": "127.0.0.1",
        "port": port,
        "points_file": str(points_file),
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1.0,
        "connect_timeout_s": 2.0,
        "command_timeout_s": 2.0,
    }
    options.update(settings)
    inline = ", ".join(f"{key} = {json.dumps(value)}" for key, value in options.items())
    return f"""
[deployment]
name = "iec104-test"
[[sources]]
name = "rtu"
type = "iec104"
settings = {{ {inline} }}
[[sinks]]
name = "log"
type = "list"
"""


class Rig:
    """A twin served by the IEC 104 simulator server on a free loopback port."""

    def __init__(self, tmp_path: Path, server_settings: dict | None = None) -> None:
        self.map_path = tmp_path / "iec104.csv"
        self.map_path.write_text(POINT_MAP)
        self.twin = StaticTwin(TWIN_POINTS, INITIAL)
        self.port = free_port()
        self.server_settings = {"port": self.port, "points_file": str(self.map_path), **(server_settings or {})}
        self.server = Iec104Server("sim", self.server_settings, self.twin)

    def deployment(self, **settings) -> str:
        return deployment(self.port, self.map_path, **settings)
