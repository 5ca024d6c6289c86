"""OPC UA ingest benchmark: updates/s from the OPC UA simulator server into the point database.

One process, one event loop: a StaticTwin changes every point as fast as the loop allows, the
``opcua`` simulator server (asyncua ``Server``) turns the changes into data-change
notifications. Phase 1 measures the ``opcua`` source inside a kernel (updates counted by the
kernel); phase 2, against the same server, asyncua's own client loop (a subscription with a
``datachange_notification`` handler that only counts). Same nodes, publishing interval and
queue size in both phases.

    .venv/bin/python bench/protocols/opcua.py [--seconds 10] [--points 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

from asyncua import Client, ua

import dms_opcua.plugin
from dms_hookspecs import PointKind, PointSpec
from dms_kernel.testing import build_kernel
from dms_opcua import OpcUaServer
from dms_opcua.testing import free_port
from dms_simulator import PointMapEntry, StaticTwin, write_point_map

PUBLISHING_INTERVAL_MS = 20


async def _drive(twin: StaticTwin, names: list[str], stop: asyncio.Event) -> None:
    value = 0.0
    while not stop.is_set():
        value += 1.0
        twin.set_many({name: value for name in names})
        await asyncio.sleep(0.002)


async def _plugin_phase(points_file: Path, port: int, seconds: float) -> float:
    kernel = build_kernel(
        ("opcua", dms_opcua.plugin),
        deployment=f'''
[deployment]
name = "bench-opcua"
[[sources]]
name = "ua"
type = "opcua"
[sources.settings]
points_file = "{points_file}"
port = {port}
publishing_interval_ms = {PUBLISHING_INTERVAL_MS}
''',
    )
    async with kernel:
        source = kernel.sources["ua"]
        while not source.connects:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # warm up
        start_count, start = kernel.counters["updates"], time.perf_counter()
        await asyncio.sleep(seconds)
        return (kernel.counters["updates"] - start_count) / (time.perf_counter() - start)


class _Counter:
    count = 0

    def datachange_notification(self, node, val, data) -> None:
        self.count += 1


async def _raw_phase(names: list[str], port: int, seconds: float) -> float:
    client = Client(f"opc.tcp://127.0.0.1:{port}", timeout=4)
    await client.connect()
    try:
        handler = _Counter()
        subscription = await client.create_subscription(PUBLISHING_INTERVAL_MS, handler)
        await subscription.subscribe_data_change([client.get_node(ua.NodeId(name, 2)) for name in names], queuesize=1, sampling_interval=0.0)
        await asyncio.sleep(0.5)
        start_count, start = handler.count, time.perf_counter()
        await asyncio.sleep(seconds)
        return (handler.count - start_count) / (time.perf_counter() - start)
    finally:
        await client.disconnect()


async def _measure(seconds: float, points: int) -> dict:
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    names = [f"P{n}" for n in range(points)]
    with tempfile.TemporaryDirectory() as tmp:
        points_file = Path(tmp) / "points.csv"
        write_point_map(points_file, [PointMapEntry(name, f"ns=2;s={name}", PointKind.ANALOG) for name in names])
        twin = StaticTwin([PointSpec(name) for name in names])
        port = free_port()
        server = OpcUaServer("bench", {"port": port, "points_file": str(points_file)}, twin)
        await server.start()
        stop = asyncio.Event()
        driver = asyncio.get_running_loop().create_task(_drive(twin, names, stop))
        try:
            plugin = await _plugin_phase(points_file, port, seconds / 2)
            raw = await _raw_phase(names, port, seconds / 2)
        finally:
            stop.set()
            await driver
            await server.stop()
    return {
        "protocol": "opcua",
        "plugin_updates_per_s": round(plugin),
        "raw_updates_per_s": round(raw),
        "notes": (
            f"asyncua 2.1.0, {points} Double variables, publishing interval {PUBLISHING_INTERVAL_MS} ms, queue size 1; "
            "simulator server, twin driver and client share one process and event loop (the server's encoding is "
            "part of both numbers); raw = asyncua Client subscription with a counting datachange_notification handler; "
            f"overhead raw/plugin = {raw / plugin:.2f}x" if plugin else "plugin received nothing"
        ),
    }


def measure(seconds: float = 10.0, points: int = 500) -> dict:
    """Updates/s through the opcua source into the point database, and asyncua's own client loop."""
    return asyncio.run(_measure(seconds, points))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--points", type=int, default=500)
    args = parser.parse_args()
    print(json.dumps(measure(args.seconds, args.points), indent=2))
