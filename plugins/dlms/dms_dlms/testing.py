"""A ready-made meter for tests and the benchmark: a point map, a StaticTwin and the simulated meter.

Needs ``dms_simulator`` (the ``test`` extra) for the twin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dms_hookspecs import PointKind, PointSpec

from .server import DlmsMeterServer

__all__ = ["MeterRig", "POINT_MAP", "wait_for"]

POINT_MAP = """point,address,kind,scale
M1/E_imp,1.0.1.8.0.255:2,counter,1
M1/P,1.0.1.7.0.255:2,analog,1
M1/U_L1,1.0.32.7.0.255:2,analog,1
M1/I_L1,1.0.31.7.0.255:2,analog,1
M1/LP_E_imp,1.0.99.1.0.255:2:1.0.1.8.0.255,counter,1
M1/LP_P,1.0.99.1.0.255:2:1.0.1.7.0.255,analog,1
M1/Breaker,0.0.96.3.10.255:2,double,1
"""

SPECS = [
    PointSpec("M1/E_imp", PointKind.COUNTER, unit="Wh"),
    PointSpec("M1/P", PointKind.ANALOG, unit="W"),
    PointSpec("M1/U_L1", PointKind.ANALOG, unit="V"),
    PointSpec("M1/I_L1", PointKind.ANALOG, unit="A"),
    PointSpec("M1/LP_E_imp", PointKind.COUNTER, unit="Wh"),
    PointSpec("M1/LP_P", PointKind.ANALOG, unit="W"),
    PointSpec("M1/Breaker", PointKind.DOUBLE, controllable=True),
]

INITIAL = {"M1/E_imp": 12345.67, "M1/P": 1500.5, "M1/U_L1": 230.1, "M1/I_L1": 6.52, "M1/Breaker": 2}


class MeterRig:
    """One simulated meter on a free loopback port, with its twin and point map in ``directory``."""

    def __init__(self, directory: Path, point_map: str = POINT_MAP, specs=None, initial=None, **server_settings: Any) -> None:
        from dms_simulator import StaticTwin

        self.points_file = Path(directory) / "meter.csv"
        self.points_file.write_text(point_map)
        self.twin = StaticTwin(SPECS if specs is None else specs, dict(INITIAL if initial is None else initial))
        settings = {"port": 0, "points_file": str(self.points_file), **server_settings}
        self.server = DlmsMeterServer("meter1", settings, self.twin)

    @property
    def port(self) -> int:
        return self.server.port

    def source_settings(self, **overrides: Any) -> dict[str, Any]:
        settings = {
            "port": self.port,
            "points_file": str(self.points_file),
            "poll_period_s": 0.1,
            "profile_period_s": 0.2,
            "request_timeout_s": 0.5,
            "connect_timeout_s": 0.5,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.4,
        }
        settings.update(overrides)
        return settings

    def deployment(self, **overrides: Any) -> str:
        settings = self.source_settings(**overrides)
        inline = ", ".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
        return f"""
[deployment]
name = "dlms-test"
[[sources]]
name = "meter1"
type = "dlms"
settings = {{ {inline} }}
[[sinks]]
name = "events"
type = "list"
"""


async def wait_for(predicate, timeout=3.0, step=0.02):
    """Poll ``predicate`` until true; returns the time it took. :raises AssertionError: timeout."""
    import asyncio
    import time

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")
