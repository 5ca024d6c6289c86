"""DNP3 plugin over real loopback sockets: dnp3py master (our source, in a kernel) against the
opendnp3 outstation (our simulator server) with a StaticTwin behind it."""

from __future__ import annotations

import asyncio
import time

import pytest

import dms_dnp3.plugin
from dms_dnp3.server import Dnp3OutstationServer
from dms_hookspecs import Command, CommandStatus, Detail, MeasurementBatch, Quality, QualitySource, Validity
from dms_simulator import write_point_map
from plugins_for_tests import ListSink, test_types

from dnp3_support import POINTS, deployment, free_port, make_twin, wait_for


@pytest.fixture
def points_file(tmp_path):
    path = tmp_path / "dnp3_points.csv"
    write_point_map(path, POINTS)
    return path


@pytest.fixture
async def sim(points_file):
    twin = make_twin()
    port = free_port()
    server = Dnp3OutstationServer("sim", {"port": port, "points_file": str(points_file)}, twin)
    await server.start()
    try:
        yield twin, server, port
    finally:
        await server.stop()


def kernel_with(make_kernel, text):
    return make_kernel(("dnp3", dms_dnp3.plugin), ("tests", test_types), deployment=text)


def good(bits) -> bool:
    return Quality.from_bits(bits).is_good if isinstance(bits, int) else bits.is_good


async def test_values_quality_and_timestamps(make_kernel, sim, points_file):
    twin, _, port = sim
    kernel = kernel_with(make_kernel, deployment(points_file, port))
    async with kernel:
        read = kernel.points.read
        await wait_for(lambda: read("S1/P").quality.is_good, what="integrity poll")
        assert read("S1/P").value == pytest.approx(12.5)
        assert read("S1/U").value == pytest.approx(20.5)
        assert read("S1/CB1").value == 2.0
        assert read("S1/Tap").value == 3.0
        assert read("S1/Psp").value == pytest.approx(1.25)
        assert read("S1/Energy").value == 100.0
        # events carry the field time (g32v8, g2v2, g4v2, g22v5, g42v8)
        stamp = 1_700_000_000.125
        twin.set_many({"S1/P": 42.75, "S1/Alarm": 1, "S1/CB2": 1, "S1/Energy": 123, "S1/Tap": 5}, source_time=stamp)
        await wait_for(lambda: read("S1/P").value == pytest.approx(42.75), what="analog event")
        await wait_for(lambda: read("S1/Tap").value == 5.0, what="tap event")
        for name, value in (("S1/P", 42.75), ("S1/Alarm", 1.0), ("S1/CB2", 1.0), ("S1/Energy", 123.0), ("S1/Tap", 5.0)):
            m = read(name)
            assert m.value == pytest.approx(value), name
            assert m.quality.is_good, (name, str(m.quality))
            assert m.source_time == pytest.approx(stamp, abs=0.002), name
        # quality: DNP3 flags round-trip (COMM_LOST → invalid/old data, LOCAL_FORCED → substituted,
        # OVER_RANGE → questionable/overflow)
        twin.set("S1/U", 21.0, Quality(Validity.INVALID, Detail.OLD_DATA).to_bits())
        await wait_for(lambda: read("S1/U").value == pytest.approx(21.0), what="invalid value")
        assert read("S1/U").quality.validity is Validity.INVALID and Detail.OLD_DATA in read("S1/U").quality.detail
        twin.set("S1/U", 21.5, Quality(source=QualitySource.SUBSTITUTED).to_bits())
        await wait_for(lambda: read("S1/U").value == pytest.approx(21.5), what="substituted value")
        assert read("S1/U").quality.source is QualitySource.SUBSTITUTED
        twin.set("S1/P", 99.0, Quality(Validity.QUESTIONABLE, Detail.OVERFLOW).to_bits())
        await wait_for(lambda: read("S1/P").value == 99.0, what="overflow value")
        assert Detail.OVERFLOW in read("S1/P").quality.detail
        # sinks saw batches with names
        sink = ListSink.instances["log"]
        await wait_for(lambda: any("S1/P" in list(b.names) for b in sink.of_type(MeasurementBatch)), what="sink batch")


async def test_commands_sbo_direct_refused_timeout(make_kernel, sim, points_file):
    twin, _, port = sim
    kernel = kernel_with(make_kernel, deployment(points_file, port))
    async with kernel:
        source = kernel.sources["rtu"]
        await wait_for(source.connected.is_set, what="connection")
        # breaker open with SELECT/OPERATE (point declared SBO)
        result = await kernel.execute(Command("S1/CB1", 1, originator="op"))
        assert result.status is CommandStatus.SUCCEEDED, result
        assert "SUCCESS" in result.reason
        assert twin.commands[-1] == ("S1/CB1", 1.0)
        await wait_for(lambda: kernel.points.read("S1/CB1").value == 1.0, what="breaker position")
        # close again
        assert (await kernel.execute(Command("S1/CB1", 2))).ok
        assert twin.commands[-1] == ("S1/CB1", 2.0)
        # binary relay, tap position and scaled set-point (analogue output g41)
        assert (await kernel.execute(Command("S1/Relay", 1))).ok
        assert (await kernel.execute(Command("S1/Tap", 4))).ok
        assert (await kernel.execute(Command("S1/Psp", 2.5))).ok
        assert twin.commands[-3:] == [("S1/Relay", 1.0), ("S1/Tap", 4.0), ("S1/Psp", pytest.approx(2.5))]
        await wait_for(lambda: kernel.points.read("S1/Tap").value == 4.0, what="tap status")
        # DIRECT_OPERATE: operate without a preceding select
        direct = await source.operate(Command("S1/CB2", 1))
        assert direct.ok, direct
        assert twin.commands[-1] == ("S1/CB2", 1.0)
        # refused by the twin → CROB status BLOCKED → FAILED
        twin.refuse["S1/CB1"] = "interlocked"
        refused = await kernel.execute(Command("S1/CB1", 1))
        assert refused.status is CommandStatus.FAILED and "BLOCKED" in refused.reason, refused
        del twin.refuse["S1/CB1"]
        # invalid value is rejected by the source before anything is sent
        bad = await kernel.execute(Command("S1/CB1", 7))
        assert bad.status is CommandStatus.REJECTED
        # no response in time → TIMEOUT (the twin takes longer than the master's response timeout)
        twin.operate_delay_s = 1.6
        slow = await kernel.execute(Command("S1/CB2", 2, timeout_s=5))
        assert slow.status is CommandStatus.TIMEOUT, slow
        twin.operate_delay_s = 0.0
        await asyncio.sleep(0.8)  # let the late answer arrive and be dropped
        assert (await kernel.execute(Command("S1/CB2", 1))).ok
        assert kernel.counters["source_restarts"] == 0


async def test_link_loss_and_reconnect(make_kernel, points_file):
    twin = make_twin()
    port = free_port()
    server = Dnp3OutstationServer("sim", {"port": port, "points_file": str(points_file)}, twin)
    await server.start()
    kernel = kernel_with(make_kernel, deployment(points_file, port))
    try:
        async with kernel:
            read = kernel.points.read
            names = [e.point for e in POINTS]
            await wait_for(lambda: all(read(n).quality.is_good for n in names), what="all good")
            await server.stop()
            lost = time.monotonic()
            await wait_for(lambda: all(read(n).quality.validity is Validity.INVALID for n in names), timeout=2.0,
                           what="invalid within 2 s")
            assert time.monotonic() - lost < 2.0
            assert all(Detail.OLD_DATA in read(n).quality.detail for n in names)
            assert read("S1/P").value == pytest.approx(12.5)  # last value kept
            twin.set("S1/P", 13.0)
            server = Dnp3OutstationServer("sim", {"port": port, "points_file": str(points_file)}, twin)
            await server.start()
            await wait_for(lambda: all(read(n).quality.is_good for n in names), timeout=5.0, what="good again")
            assert read("S1/P").value == pytest.approx(13.0)
            assert kernel.counters["source_restarts"] == 0
    finally:
        await server.stop()
