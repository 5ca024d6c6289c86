"""IEC 104 ingest benchmark: simulator server → iec104 source → point database, next to c104's own client loop.

Both phases use the same c104 simulator server and the same producer thread (``twin.set_many``
of all points, paced), one after the other in one process:

* plugin: the ``iec104`` source inside a kernel; updates counted by the kernel (``counters["updates"]``);
* raw: a bare ``c104.Client`` whose ``on_receive`` callbacks read value, quality and time tag and count.

Run alone: ``.venv/bin/python bench/protocols/iec104.py [seconds]``.
"""

import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

import c104

import dms_iec104.plugin
from dms_hookspecs import PointSpec
from dms_iec104 import Iec104Server
from dms_iec104.testing import deployment, free_port
from dms_kernel.testing import build_kernel
from dms_simulator import PointMapEntry, StaticTwin, write_point_map

POINTS = 200
PACE_S = 0.004  # producer pause between two full sweeps (offers up to ~50k updates/s)


class _Producer(threading.Thread):
    def __init__(self, twin: StaticTwin, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.twin, self.names = twin, names
        self.stop_flag = threading.Event()
        self.offered = 0

    def run(self) -> None:
        value = 0.0
        while not self.stop_flag.is_set():
            value += 1.0
            self.twin.set_many({name: value + i for i, name in enumerate(self.names)})
            self.offered += len(self.names)
            time.sleep(PACE_S)


async def _window(count, seconds: float) -> float:
    await asyncio.sleep(min(0.5, seconds / 4))  # warm-up
    start_count, start = count(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (count() - start_count) / (time.perf_counter() - start)


async def _measure(seconds: float) -> dict:
    half = max(1.0, seconds / 2)
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"bench/P{i}" for i in range(POINTS)]
        points_file = Path(tmp) / "map.csv"
        write_point_map(points_file, [PointMapEntry(name, f"1:{1001 + i}") for i, name in enumerate(names)])
        twin = StaticTwin([PointSpec(name) for name in names])
        port = free_port()
        server = Iec104Server("bench", {"port": port, "points_file": str(points_file)}, twin)
        await server.start()
        try:
            # plugin: source in a kernel
            kernel = build_kernel(("iec104", dms_iec104.plugin), deployment=deployment(port, points_file).split("[[sinks]]")[0])
            async with kernel:
                while not kernel.points.read(names[-1]).quality.is_good:
                    await asyncio.sleep(0.01)
                producer = _Producer(twin, names)
                producer.start()
                plugin_rate = await _window(lambda: kernel.counters["updates"], half)
                producer.stop_flag.set()
                producer.join()
                plugin_offered = producer.offered

            # raw: c104's own client loop
            received = [0]
            client = c104.Client(tick_rate_ms=50, command_timeout_ms=2000)
            client.start()
            connection = client.add_connection(ip="127.0.0.1", port=port, init=c104.Init.NONE)
            station = connection.add_station(common_address=1)

            def on_receive(point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage) -> c104.ResponseState:
                # what any consumer reads: value, quality and time tag
                point.value, point.quality, point.recorded_at  # noqa: B018
                received[0] += 1
                return c104.ResponseState.NONE

            for i in range(POINTS):
                station.add_point(io_address=1001 + i, type=c104.Type.M_ME_TF_1).on_receive(callable=on_receive)
            connection.connect()
            deadline = time.monotonic() + 5
            while connection.state != c104.ConnectionState.OPEN and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                if connection.state == c104.ConnectionState.OPEN_MUTED:
                    await asyncio.to_thread(connection.unmute)  # c104 2.2.1 STARTDT race, as in the source
            producer = _Producer(twin, names)
            producer.start()
            raw_rate = await _window(lambda: received[0], half)
            producer.stop_flag.set()
            producer.join()
            await asyncio.to_thread(client.stop)
        finally:
            await server.stop()
    return {
        "protocol": "iec104",
        "plugin_updates_per_s": round(plugin_rate),
        "raw_updates_per_s": round(raw_rate),
        "notes": (
            f"c104 2.2.1 server with transmit_batch (M_ME_TF_1, {POINTS} points, one CA) on loopback; producer thread "
            f"offers full sweeps every {PACE_S * 1000:g} ms (plugin phase offered {plugin_offered / half:.0f}/s); "
            f"overhead raw/plugin = {raw_rate / plugin_rate:.2f}x" if plugin_rate else "plugin received nothing"
        ),
    }


def measure(seconds: float) -> dict:
    """Updates/s into the point database through the iec104 source vs. c104's bare client loop."""
    return asyncio.run(_measure(seconds))


if __name__ == "__main__":
    print(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 8.0))
