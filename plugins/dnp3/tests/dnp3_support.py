"""Helpers shared by the DNP3 tests."""

from __future__ import annotations

import asyncio
import socket
import time

from dms_hookspecs import PointKind, PointSpec
from dms_simulator import PointMapEntry, StaticTwin

POINTS = [
    PointMapEntry("S1/P", "analog:0", PointKind.ANALOG, 1.0),
    PointMapEntry("S1/U", "analog:3", PointKind.ANALOG, 0.5),
    PointMapEntry("S1/Alarm", "binary:1", PointKind.BINARY),
    PointMapEntry("S1/CB1", "crob:0@double:0", PointKind.DOUBLE),
    PointMapEntry("S1/CB2", "crob:1@double:1", PointKind.DOUBLE),
    PointMapEntry("S1/Relay", "crob:2", PointKind.BINARY),
    PointMapEntry("S1/Energy", "counter:0", PointKind.COUNTER),
    PointMapEntry("S1/Tap", "aout:0", PointKind.STEP),
    PointMapEntry("S1/Psp", "aout:1", PointKind.SETPOINT, 0.01),
]
CONTROLS = {"S1/CB1", "S1/CB2", "S1/Relay", "S1/Tap", "S1/Psp"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_twin() -> StaticTwin:
    specs = [PointSpec(e.point, e.kind, controllable=e.point in CONTROLS) for e in POINTS]
    return StaticTwin(specs, {"S1/P": 12.5, "S1/U": 20.5, "S1/CB1": 2, "S1/CB2": 2, "S1/Tap": 3, "S1/Psp": 1.25, "S1/Energy": 100})


def deployment(points_file, port: int, extra: str = "", name: str = "rtu", more: str = "") -> str:
    return f'''
[deployment]
name = "dnp3-test"
[[sources]]
name = "{name}"
type = "dnp3"
[sources.settings]
host = "127.0.0.1"
port = {port}
points_file = "{points_file}"
response_timeout_s = 1.0
event_poll_s = 0.2
reconnect_min_s = 0.1
reconnect_max_s = 0.5
{extra}
{more}
[[sinks]]
name = "log"
type = "list"
'''


async def wait_for(predicate, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


