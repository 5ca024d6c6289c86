"""DNP3 ingest benchmark: opendnp3 outstation (our simulator) → dnp3py master.

``plugin``: our ``dnp3`` source inside a kernel, counting updates in the point database.
``raw``: dnp3py's own MasterTcpRunner with a counting SOE handler, the same event reads, the
same server, in the same run. A feeder changes every analogue point of the twin as fast as
the outstation absorbs it; both clients read the events (g32v8) as fast as they can.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

N_POINTS = 100

# run as a script, this file's directory would come first on sys.path and shadow the ``dnp3`` package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _feed(twin, names, stop: asyncio.Event) -> None:
    value = 0.0
    while not stop.is_set():
        value += 1.0
        twin.set_many({name: value + i for i, name in enumerate(names)})
        await asyncio.sleep(0.05)


async def _plugin(seconds: float, points_file: Path, port: int) -> float:
    import dms_dnp3.plugin
    from dms_kernel.testing import build_kernel

    text = f'''
[deployment]
name = "bench-dnp3"
[[sources]]
name = "rtu"
type = "dnp3"
[sources.settings]
host = "127.0.0.1"
port = {port}
points_file = "{points_file}"
event_poll_s = 0.001
'''
    kernel = build_kernel(("dnp3", dms_dnp3.plugin), deployment=text)
    async with kernel:
        source = kernel.sources["rtu"]
        while not source.connected.is_set():
            await asyncio.sleep(0.05)
        start_count, start = kernel.counters["updates"], time.perf_counter()
        await asyncio.sleep(seconds)
        return (kernel.counters["updates"] - start_count) / (time.perf_counter() - start)


async def _raw(seconds: float, port: int) -> float:
    from dnp3.application.builder import build_read_request
    from dnp3.application.fragment import ObjectBlock
    from dnp3.application.qualifiers import ObjectHeader, PrefixCode, RangeCode
    from dnp3.master import Master, MasterConfig, MasterTcpRunner

    class Counter:
        n = 0

        def on_analog_input(self, values, info):
            Counter.n += len(values)

    master = Master(config=MasterConfig(address=1, outstation_address=10, max_fragment_size=4096), handler=Counter())
    runner = MasterTcpRunner(master=master, host="127.0.0.1", port=port, response_timeout=5)
    await runner.open()
    block = ObjectBlock(header=ObjectHeader.build(group=32, variation=8, prefix=PrefixCode.NONE, range_code=RangeCode.ALL_OBJECTS))
    try:
        start, deadline = time.perf_counter(), time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await runner.request(build_read_request((block,), seq=master.next_request_sequence()))
        return Counter.n / (time.perf_counter() - start)
    finally:
        await runner.close()


async def _measure(seconds: float) -> dict:
    from dms_dnp3.server import Dnp3OutstationServer
    from dms_hookspecs import PointKind, PointSpec
    from dms_simulator import PointMapEntry, StaticTwin, write_point_map

    names = [f"B/P{i}" for i in range(N_POINTS)]
    twin = StaticTwin([PointSpec(n, PointKind.ANALOG) for n in names])
    with tempfile.TemporaryDirectory() as tmp:
        points_file = Path(tmp) / "points.csv"
        write_point_map(points_file, [PointMapEntry(n, f"analog:{i}") for i, n in enumerate(names)])
        results = {}
        for mode in ("raw", "plugin"):
            port = _free_port()
            server = Dnp3OutstationServer("bench", {"port": port, "points_file": str(points_file), "event_buffer": 1000}, twin)
            await server.start()
            stop = asyncio.Event()
            feeder = asyncio.create_task(_feed(twin, names, stop))
            try:
                results[mode] = await (_raw(seconds, port) if mode == "raw" else _plugin(seconds, points_file, port))
            finally:
                stop.set()
                await feeder
                await server.stop()
    raw, plugin = results["raw"], results["plugin"]
    return {
        "protocol": "dnp3",
        "plugin_updates_per_s": round(plugin),
        "raw_updates_per_s": round(raw),
        "notes": (f"{N_POINTS} analogue points changed every 50 ms (offered 2000 updates/s; see docs/protocols/dnp3.md for the ceiling) by the twin; opendnp3 outstation (dnp3-python 0.3.0b1), "
                  f"dnp3py 0.6.0 master reading g32v8 events back to back; overhead raw/plugin = {raw / plugin:.2f}x"
                  if plugin else "plugin received nothing"),
    }


def measure(seconds: float = 5.0) -> dict:
    """Updates/s through the plugin and through dnp3py's own client loop, same server, same run."""
    return asyncio.run(_measure(seconds / 2))


if __name__ == "__main__":
    print(json.dumps(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0), indent=2))
