"""DLMS/COSEM ingest: updates/s from the simulated meter into the point database, vs the raw library loop.

One simulated meter (``dms_dlms.server.DlmsMeterServer``, asyncio TCP + gurux-dlms) serves
``REGISTERS`` registers on loopback. In the same run, each for ``seconds / 2``:

* plugin: a kernel with the ``dlms`` source polling as fast as it can (``poll_period_s`` 1 µs):
  one get-with-list of clock + all registers per poll → point database; updates counted by
  the kernel (``counters["updates"]``);
* raw: gurux's own synchronous client loop (as in Gurux.DLMS.Client.Example.python's
  GXDLMSReader.readList): ``GXNet`` (gurux-net) + ``GXDLMSClient.readList`` + ``updateValues``
  of the same attributes, in a worker thread, against the same meter.

DLMS meters are polled, so both numbers are bounded by request/response round trips (the meter
decodes and answers in a worker thread); the ratio is the plugin's overhead.

    .venv/bin/python bench/protocols/dlms.py [seconds]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

REGISTERS = 50


def _point_map(directory: Path) -> tuple[Path, list]:
    from dms_hookspecs import PointKind, PointSpec

    lines = ["point,address,kind,scale"]
    specs = []
    for n in range(REGISTERS):
        lines.append(f"B/R{n},1.1.{n + 1}.7.0.255:2,analog,1")
        specs.append(PointSpec(f"B/R{n}", PointKind.ANALOG, unit="W"))
    path = directory / "bench.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, specs


def _raw_loop(port: int, seconds: float) -> tuple[int, float]:
    """Gurux's synchronous client loop over gurux-net; returns (values read, elapsed)."""
    from gurux_common import ReceiveParameters
    from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
    from gurux_dlms.enums import Authentication, InterfaceType
    from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister
    from gurux_net import GXNet
    from gurux_net.enums import NetworkType

    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    media = GXNet(NetworkType.TCP, "127.0.0.1", port)
    media.open()

    def exchange(frame, reply):
        params = ReceiveParameters()
        params.eop = None
        params.allData = True
        params.waitTime = 5000
        received = GXByteBuffer()
        with media.getSynchronous():
            media.send(frame)
            while not client.getData(received, reply, None):
                params.count = client.getFrameSize(received)
                if not media.receive(params):
                    raise TimeoutError("no reply")
                received.set(params.reply)
                params.reply = None

    def exchange_all(request, reply):
        frames = [request] if isinstance(request, bytes | bytearray) else request
        for frame in frames:
            if isinstance(frame, list):
                exchange_all(frame, reply)
                continue
            reply.clear()
            exchange(frame, reply)
            while reply.isMoreData():
                exchange(client.receiverReady(reply), reply)

    try:
        reply = GXReplyData()
        exchange_all(client.aarqRequest(), reply)
        client.parseAareResponse(reply.data)
        registers = [GXDLMSRegister(f"1.1.{n + 1}.7.0.255") for n in range(REGISTERS)]

        def read_list(items):  # GXDLMSReader.readList
            values = []
            for frame in client.readList(items):
                exchange_all(frame, reply)
                values.extend(reply.value)
            client.updateValues(items, values)

        read_list([(r, 3) for r in registers])
        items = [(GXDLMSClock("0.0.1.0.0.255"), 2)] + [(r, 2) for r in registers]
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            read_list(items)
            count += REGISTERS
        elapsed = time.perf_counter() - start
        try:
            exchange_all(client.releaseRequest(), reply)
        except Exception:  # noqa: BLE001 - best effort
            pass
        return count, elapsed
    finally:
        media.close()


async def _measure(seconds: float) -> dict:
    import dms_dlms.plugin
    from dms_dlms.server import DlmsMeterServer
    from dms_kernel.testing import build_kernel
    from dms_simulator import StaticTwin

    with tempfile.TemporaryDirectory() as tmp:
        points_file, specs = _point_map(Path(tmp))
        twin = StaticTwin(specs, {spec.id.name: 1000.0 + i for i, spec in enumerate(specs)})
        server = DlmsMeterServer("bench", {"port": 0, "points_file": str(points_file), "profile_period_s": 3600.0}, twin)
        await server.start()
        try:
            half = seconds / 2
            deployment = f"""
[deployment]
name = "bench-dlms"
[[sources]]
name = "meter"
type = "dlms"
settings = {{ port = {server.port}, points_file = "{points_file}", poll_period_s = 0.000001, profile_period_s = 3600.0, event_log = "" }}
"""
            kernel = build_kernel(("dlms", dms_dlms.plugin), deployment=deployment)
            async with kernel:
                source = kernel.sources["meter"]
                while source.polls == 0:
                    await asyncio.sleep(0.01)
                before, polls_before, start = kernel.counters["updates"], source.polls, time.perf_counter()
                await asyncio.sleep(half)
                updates = kernel.counters["updates"] - before
                polls = source.polls - polls_before
                plugin_elapsed = time.perf_counter() - start
            raw_count, raw_elapsed = await asyncio.to_thread(_raw_loop, server.port, half)
        finally:
            await server.stop()
    plugin_rate = updates / plugin_elapsed
    raw_rate = raw_count / raw_elapsed
    return {
        "protocol": "dlms",
        "plugin_updates_per_s": round(plugin_rate),
        "raw_updates_per_s": round(raw_rate),
        "notes": (
            f"polled meter, {REGISTERS} registers + clock per get-with-list, "
            f"{polls / plugin_elapsed:.0f} polls/s through the kernel vs {raw_count / REGISTERS / raw_elapsed:.0f} polls/s "
            f"with gurux-net + GXDLMSClient (sync); overhead raw/plugin = {raw_rate / plugin_rate:.2f}x"
        ),
    }


def measure(seconds: float = 10.0) -> dict:
    """Plugin vs raw gurux client loop, ``seconds`` in total."""
    return asyncio.run(_measure(seconds))


if __name__ == "__main__":
    print(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))
