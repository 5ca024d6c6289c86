"""OPC UA source against the OPC UA simulator server, over real loopback sockets, in a real kernel."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from asyncua import Client, ua
from plugins_for_tests import ListSink, test_types

import dms_opcua.plugin
from dms_hookspecs import Alarm, Command, CommandStatus, Detail, Quality, QualitySource, Validity
from dms_opcua import OpcUaServer
from dms_opcua.testing import eventually, free_port

PLUGINS = (("opcua", dms_opcua.plugin), ("test_types", test_types))


def deployment(points_file, port, extra: str = "", name: str = "ua", timeout_s: float = 2.0) -> str:
    return f'''
[deployment]
name = "opcua-test"
[[sources]]
name = "{name}"
type = "opcua"
[sources.settings]
points_file = "{points_file}"
port = {port}
timeout_s = {timeout_s}
publishing_interval_ms = 20
watchdog_s = 0.5
reconnect_min_s = 0.2
reconnect_max_s = 1.0
{extra}
[[sinks]]
name = "log"
type = "list"
'''


@contextlib.asynccontextmanager
async def serving(twin, points_file, port, **settings):
    server = OpcUaServer("sim", {"port": port, "points_file": str(points_file), **settings}, twin)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def good(kernel, point) -> bool:
    return kernel.points.read(point).quality.is_good


async def test_values_arrive_with_quality_and_source_timestamps(make_kernel, twin, points_file):
    port = free_port()
    async with serving(twin, points_file, port):
        kernel = make_kernel(*PLUGINS, deployment=deployment(points_file, port))
        async with kernel:
            # integrity read at start: every point good with the twin's initial values
            await eventually(lambda: all(good(kernel, p) for p in ("Trafo_0-1/P", "Bus_1/U", "switch_6/Pos", "Trafo_0-1/Tap", "Feeder/Alarm")))
            assert kernel.points.read("Trafo_0-1/P").value == 12.5
            assert kernel.points.read("Bus_1/U").value == pytest.approx(20.1)  # scale 0.001: server sends 20100 V
            assert kernel.points.read("switch_6/Pos").value == 2
            assert kernel.points.read("Trafo_0-1/Tap").value == 3
            # spontaneous updates carry the twin's source timestamp and quality
            twin.set("Trafo_0-1/P", 13.25, source_time=1_700_000_000.125)
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").value == 13.25)
            m = kernel.points.read("Trafo_0-1/P")
            assert m.quality.is_good and m.source_time == pytest.approx(1_700_000_000.125, abs=1e-6)
            assert m.receive_time > m.source_time
            twin.set("Feeder/Alarm", 1)
            await eventually(lambda: kernel.points.read("Feeder/Alarm").value == 1.0)

            questionable = Quality(Validity.QUESTIONABLE).to_bits()
            twin.set("Bus_1/U", 20.4, quality=questionable)
            await eventually(lambda: kernel.points.read("Bus_1/U").value == pytest.approx(20.4))
            assert kernel.points.read("Bus_1/U").quality.validity is Validity.QUESTIONABLE
            substituted = Quality(source=QualitySource.SUBSTITUTED).to_bits()
            twin.set("Trafo_0-1/P", 14.0, quality=substituted)
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").value == 14.0)
            assert kernel.points.read("Trafo_0-1/P").quality.source is QualitySource.SUBSTITUTED
            # a failed device: Bad status, no value; the last value stays, quality invalid + failure
            twin.set("Trafo_0-1/Tap", 4, quality=Quality(Validity.INVALID, Detail.FAILURE).to_bits())
            await eventually(lambda: kernel.points.read("Trafo_0-1/Tap").quality.validity is Validity.INVALID)
            tap = kernel.points.read("Trafo_0-1/Tap")
            assert tap.value == 3 and Detail.FAILURE in tap.quality.detail
            assert good(kernel, "switch_6/Pos")  # other points untouched


async def test_commands_round_trip_and_refusal(make_kernel, twin, points_file):
    port = free_port()
    async with serving(twin, points_file, port):
        kernel = make_kernel(*PLUGINS, deployment=deployment(points_file, port, "select_before_operate = true"))
        async with kernel:
            await eventually(lambda: good(kernel, "switch_6/Pos"))
            assert kernel.points.spec("switch_6/Pos").controllable and not kernel.points.spec("Trafo_0-1/P").controllable

            result = await kernel.execute(Command("switch_6/Pos", 1, originator="op"))
            assert result.status is CommandStatus.SUCCEEDED, result
            assert twin.commands == [("switch_6/Pos", 1.0)]
            await eventually(lambda: kernel.points.read("switch_6/Pos").value == 1)  # reported back by the subscription
            log = ListSink.instances["log"]
            await eventually(lambda: any(e.action == "command.select" for e in log.events if hasattr(e, "action")))

            result = await kernel.execute(Command("PV_3/SP", 0.55))
            assert result.ok and twin.commands[-1] == ("PV_3/SP", 0.55)
            result = await kernel.execute(Command("Trafo_0-1/Tap", 5))
            assert result.ok and twin.read("Trafo_0-1/Tap")[0] == 5

            twin.refuse["Trafo_0-1/Tap"] = "tap changer blocked by local control"
            result = await kernel.execute(Command("Trafo_0-1/Tap", 6))
            assert result.status is CommandStatus.FAILED
            assert "BadRequestNotAllowed" in result.reason and "tap changer blocked by local control" in result.reason
            assert twin.read("Trafo_0-1/Tap")[0] == 5

            # breaker command outside 1/2: the twin refuses, the write is Bad
            result = await kernel.execute(Command("switch_6/Pos", 3))
            assert result.status is CommandStatus.FAILED and "must be 1 (open) or 2 (close)" in result.reason

            # a command the twin takes too long for: the kernel's command timeout
            twin.operate_delay_s = 1.0
            result = await kernel.execute(Command("PV_3/SP", 0.1, timeout_s=0.3))
            assert result.status is CommandStatus.TIMEOUT
            twin.operate_delay_s = 0.0

            # another client: measurement variables are read-only, controls type-checked
            client = Client(f"opc.tcp://127.0.0.1:{port}", timeout=2)
            await client.connect()
            try:
                node = client.get_node("ns=2;s=Trafo_0-1/P")
                with pytest.raises(ua.UaStatusCodeError, match="BadNotWritable|BadUserAccessDenied"):
                    await node.write_value(ua.DataValue(ua.Variant(99.0, ua.VariantType.Double)))
                control = client.get_node("ns=2;s=switch_6/Pos/Oper")
                with pytest.raises(ua.UaStatusCodeError, match="BadTypeMismatch"):
                    await control.write_value(ua.DataValue(ua.Variant(1.5, ua.VariantType.Double)))
                await control.write_value(ua.DataValue(ua.Variant(2, ua.VariantType.Int32)))
                assert twin.commands[-1] == ("switch_6/Pos", 2.0)
            finally:
                await client.disconnect()


async def test_link_loss_invalidates_within_2_s_and_reconnect_restores(make_kernel, twin, points_file):
    port = free_port()
    names = ("Trafo_0-1/P", "Bus_1/U", "switch_6/Pos", "Trafo_0-1/Tap", "Feeder/Alarm", "PV_3/SP")
    kernel = make_kernel(*PLUGINS, deployment=deployment(points_file, port))
    async with kernel:
        async with serving(twin, points_file, port):
            await eventually(lambda: all(good(kernel, p) for p in names))
        # server stopped (connections closed): every point invalid + old data at once
        took = await eventually(lambda: all(kernel.points.read(p).quality.validity is Validity.INVALID for p in names), timeout=2.0)
        assert took < 2.0
        m = kernel.points.read("Trafo_0-1/P")
        assert Detail.OLD_DATA in m.quality.detail and m.value == 12.5  # last value kept
        log = ListSink.instances["log"]
        await eventually(lambda: any(isinstance(e, Alarm) and e.category == "comms" for e in log.events))
        twin.set("Trafo_0-1/P", 15.0)
        async with serving(twin, points_file, port):
            await eventually(lambda: all(good(kernel, p) for p in names), timeout=5.0)
            assert kernel.points.read("Trafo_0-1/P").value == 15.0
            twin.set("Trafo_0-1/P", 16.0)
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").value == 16.0)
        assert kernel.counters["source_restarts"] == 0  # reconnects happen inside run()


async def test_user_and_password_are_checked_and_never_logged(make_kernel, twin, points_file, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="asyncua")  # asyncua logs requests, ActivateSession included
    port = free_port()
    async with serving(twin, points_file, port, username="operator", password="s3cret-Pa55"):
        kernel = make_kernel(*PLUGINS, deployment=deployment(points_file, port, 'username = "operator"\npassword = "wrong-Pa55"'))
        async with kernel:
            await asyncio.sleep(1.0)
            assert not good(kernel, "Trafo_0-1/P")
        assert any("connect failed" in r.getMessage() for r in caplog.records)
        kernel = make_kernel(*PLUGINS, deployment=deployment(points_file, port, 'username = "operator"\npassword = "s3cret-Pa55"'))
        async with kernel:
            await eventually(lambda: good(kernel, "Trafo_0-1/P"))
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "s3cret-Pa55" not in text and "wrong-Pa55" not in text
