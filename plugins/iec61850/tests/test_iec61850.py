"""IEC 61850 source against the IEC 61850 simulator server over real loopback MMS (no mocks)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dms_iec61850.plugin as iec61850_plugin
from dms_hookspecs import Command, CommandStatus, Detail, PointKind, PointSpec, Quality, Validity, hookimpl
from dms_hookspecs import Sink
from dms_iec61850 import from_iec_quality, parse_address, to_iec_quality
from dms_iec61850.server import Iec61850Server
from dms_simulator import PointMapEntry, StaticTwin, write_point_map

POINTS = [
    PointMapEntry("S1/P", "IED1LD0/MMXU1.TotW.mag.f", PointKind.ANALOG, 1.0),
    PointMapEntry("S1/Q", "IED1LD0/MMXU1.TotVAr.mag.f", PointKind.ANALOG, 1.0),
    PointMapEntry("S1/Ua", "IED1LD0/MMXU1.PhV.phsA.cVal.mag.f", PointKind.ANALOG, 1.0),
    PointMapEntry("S1/Ia", "IED1LD0/MMXU1.A.phsA.cVal.mag.f", PointKind.ANALOG, 1.0),
    PointMapEntry("CB1/Pos", "IED1LD0/CSWI1.Pos", PointKind.DOUBLE, 1.0),
    PointMapEntry("CB1/XPos", "IED1LD0/XCBR1.Pos.stVal", PointKind.DOUBLE, 1.0),
    PointMapEntry("T1/Tap", "IED1LD0/YLTC1.TapPos", PointKind.STEP, 1.0),
    PointMapEntry("P1/StrVal", "IED1LD0/PTOC1.StrVal.setMag.f", PointKind.ANALOG, 1.0),
    PointMapEntry("P1/OpDlTmms", "IED1LD0/PTOC1.OpDlTmms.setVal", PointKind.ANALOG, 1.0),
]
CONTROLS = {"CB1/Pos", "T1/Tap"}


class _Sink(Sink):
    async def write(self, events):
        pass


class sink_types:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_add_sink_types(registry):
        registry.add("null", _Sink)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_twin() -> StaticTwin:
    specs = [PointSpec(e.point, e.kind, controllable=e.point in CONTROLS) for e in POINTS]
    return StaticTwin(specs, {"CB1/Pos": 2, "CB1/XPos": 2, "T1/Tap": 5, "S1/P": 1.5, "P1/StrVal": 400, "P1/OpDlTmms": 300})


@pytest.fixture
def point_map(tmp_path):
    path = tmp_path / "iec61850.csv"
    write_point_map(path, POINTS)
    return path


def deployment(point_map, port, **extra) -> str:
    options = "".join(f"\n{key} = {value!r}" if not isinstance(value, bool) else f"\n{key} = {str(value).lower()}" for key, value in extra.items())
    return f'''
[deployment]
name = "t"
[[sources]]
name = "ied1"
type = "iec61850"
[sources.settings]
points_file = "{point_map}"
port = {port}
poll_period_s = 0.1
reconnect_min_s = 0.2
reconnect_max_s = 0.5{options}
[[sinks]]
name = "null"
type = "null"
'''


async def wait_for(predicate, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


# -- pure mapping ---------------------------------------------------------------------------------------
def test_address_parsing():
    a = parse_address("IED1LD0/MMXU1.TotW.mag.f", PointKind.ANALOG)
    assert (a.ln_ref, a.fc, a.do_ref, a.control) == ("IED1LD0/MMXU1", "MX", "IED1LD0/MMXU1.TotW", False)
    b = parse_address("IED1LD0/MMXU1.PhV.phsA.cVal.mag.f", PointKind.ANALOG)
    assert b.do_ref == "IED1LD0/MMXU1.PhV.phsA"
    c = parse_address("IED1LD0/CSWI1.Pos", PointKind.DOUBLE)
    assert c.control and c.value_ref == "IED1LD0/CSWI1.Pos.stVal" and c.value_fc == "ST"
    assert parse_address("IED1LD0/PTOC1.StrVal.setMag.f", PointKind.ANALOG).fc == "SP"
    assert parse_address("IED1LD0/MMXU1.TotW.mag.f[CF]", PointKind.ANALOG).fc == "CF"
    for bad in ("MMXU1.TotW", "IED1LD0/MMXU1", "IED1LD0/MMXU1.TotW.mag.f[XX]", "IED1LD0/MMXU1.TotW"):
        with pytest.raises(ValueError):
            parse_address(bad, PointKind.ANALOG)


@given(st.builds(Quality, st.sampled_from(list(Validity)), st.integers(0, 255).map(lambda n: Detail(n << 2)), st.integers(0, 1), st.booleans(), st.booleans()))
def test_quality_round_trip(quality):
    bits = quality.to_bits()
    assert from_iec_quality(to_iec_quality(bits)) == bits


def test_quality_matches_libiec61850():
    from dms_iec61850.lib import iec

    assert to_iec_quality(Quality(Validity.INVALID).to_bits()) == iec.QUALITY_VALIDITY_INVALID
    assert to_iec_quality(Quality(Validity.QUESTIONABLE, Detail.OLD_DATA).to_bits()) == iec.QUALITY_VALIDITY_QUESTIONABLE | iec.QUALITY_DETAIL_OLD_DATA
    assert from_iec_quality(iec.QUALITY_TEST | iec.QUALITY_VALIDITY_INVALID) == Quality(Validity.INVALID, test=True).to_bits()


# -- over loopback --------------------------------------------------------------------------------------
async def test_values_commands_and_link_loss(make_kernel, point_map):
    port = free_port()
    twin = make_twin()
    server = Iec61850Server("sim", {"points_file": str(point_map), "port": port}, twin)
    await server.start()
    kernel = make_kernel(("iec61850", iec61850_plugin), sink_types, deployment=deployment(point_map, port))
    try:
        async with kernel:
            # (a) values with quality and source time
            assert await wait_for(lambda: kernel.points.read("S1/P").value == pytest.approx(1.5))
            assert kernel.points.read("CB1/Pos").value == 2
            assert kernel.points.read("T1/Tap").value == 5
            assert kernel.points.read("P1/StrVal").value == pytest.approx(400)
            assert kernel.points.read("P1/OpDlTmms").value == 300
            stamp = time.time() - 100.0
            questionable = Quality(Validity.QUESTIONABLE, Detail.INACCURATE).to_bits()
            twin.set("S1/Ua", 20.25, questionable, stamp)
            twin.set("S1/Q", -3.5)
            assert await wait_for(lambda: kernel.points.read("S1/Ua").value == pytest.approx(20.25))
            ua = kernel.points.read("S1/Ua")
            assert ua.quality.to_bits() == questionable
            assert ua.source_time == pytest.approx(stamp, abs=0.002)
            assert kernel.points.read("S1/Q").value == pytest.approx(-3.5)
            assert kernel.points.read("S1/Q").quality.is_good
            twin.set("CB1/XPos", 1)
            assert await wait_for(lambda: kernel.points.read("CB1/XPos").value == 1)

            # (b) SBO with enhanced security: select-with-value, operate, CommandTermination+
            result = await kernel.execute(Command("CB1/Pos", 1, originator="op"))
            assert result.status is CommandStatus.SUCCEEDED, result
            assert twin.commands[-1] == ("CB1/Pos", 1.0)
            assert await wait_for(lambda: kernel.points.read("CB1/Pos").value == 1)
            result = await kernel.execute(Command("T1/Tap", 7, originator="op"))
            assert result.status is CommandStatus.SUCCEEDED, result
            assert twin.commands[-1] == ("T1/Tap", 7.0)
            # refused by the twin: CommandTermination- with LastApplError
            twin.refuse["CB1/Pos"] = "interlocked"
            result = await kernel.execute(Command("CB1/Pos", 2, originator="op"))
            assert result.status is CommandStatus.FAILED, result
            assert "CommandTermination-" in result.reason
            assert twin.commands[-1] == ("T1/Tap", 7.0)
            del twin.refuse["CB1/Pos"]
            result = await kernel.execute(Command("CB1/Pos", 2, originator="op"))
            assert result.status is CommandStatus.SUCCEEDED, result

            # (c) link loss → invalid within 2 s; restart → good again
            await server.stop()
            lost = time.monotonic()
            assert await wait_for(lambda: all(not kernel.points.read(e.point).quality.is_good for e in POINTS), timeout=2.0)
            assert time.monotonic() - lost < 2.0
            q = kernel.points.read("S1/P").quality
            assert q.validity is Validity.INVALID and Detail.OLD_DATA in q.detail
            assert kernel.points.read("S1/P").value == pytest.approx(1.5)  # last value kept
            result = await kernel.execute(Command("CB1/Pos", 1, originator="op", timeout_s=2))
            assert result.status is CommandStatus.FAILED
            twin.set("S1/P", 2.5)
            server = Iec61850Server("sim", {"points_file": str(point_map), "port": port}, twin)
            await server.start()
            assert await wait_for(lambda: kernel.points.read("S1/P").value == pytest.approx(2.5)
                                  and kernel.points.read("S1/P").quality.is_good, timeout=5.0)
            # the other points come back valid with the same reconnection (the MX and ST data sets'
            # interrogations are answered one after the other, not necessarily in the same instant);
            # S1/Ua keeps the questionable quality the twin gave it
            assert await wait_for(lambda: all(kernel.points.read(e.point).quality.validity is not Validity.INVALID for e in POINTS), timeout=2.0)
            assert kernel.points.read("CB1/Pos").quality.is_good
            assert kernel.points.read("S1/Ua").quality.to_bits() == questionable
    finally:
        await server.stop()


@pytest.mark.parametrize(("server_reports", "report_type", "expected_rcbs"), [
    ("both", "unbuffered", ["IED1LD0/LLN0.RP.urcbMX01", "IED1LD0/LLN0.RP.urcbST01"]),
    ("both", "buffered", ["IED1LD0/LLN0.BR.brcbMX01", "IED1LD0/LLN0.BR.brcbST01"]),
    ("buffered", "unbuffered", ["IED1LD0/LLN0.BR.brcbMX01", "IED1LD0/LLN0.BR.brcbST01"]),  # fallback type
    ("none", "unbuffered", []),  # no RCB at all: everything polled
])
async def test_reports_gi_and_poll_fallback(make_kernel, point_map, caplog, server_reports, report_type, expected_rcbs):
    """Report mode: GI at connect, spontaneous data/quality changes through RCBs; points without an RCB are polled."""
    port = free_port()
    twin = make_twin()
    server = Iec61850Server("sim", {"points_file": str(point_map), "port": port, "reports": server_reports}, twin)
    await server.start()
    poll = 0.2 if not expected_rcbs else 30.0  # with reports, a 30 s poll period proves values come by report
    kernel = make_kernel(("iec61850", iec61850_plugin), sink_types,
                         deployment=deployment(point_map, port, report_type=report_type, integrity_period_s=1.0).replace(
                             "poll_period_s = 0.1", f"poll_period_s = {poll}"))
    caplog.set_level(logging.INFO)
    try:
        async with kernel:
            # general interrogation at connect: every point (also the polled settings) arrives once
            assert await wait_for(lambda: kernel.points.read("S1/P").value == pytest.approx(1.5)
                                  and kernel.points.read("P1/StrVal").value == pytest.approx(400))
            assert kernel.points.read("CB1/Pos").value == 2 and kernel.points.read("T1/Tap").value == 5
            assert kernel.points.read("P1/StrVal").quality.is_good and kernel.points.read("S1/P").quality.is_good
            used = [record.getMessage() for record in caplog.records if "reports:" in record.getMessage()]
            assert used, "the worker reports which RCBs it enabled"
            for ref in expected_rcbs:
                assert ref in used[-1]
            assert ("2 points polled" if expected_rcbs else "9 points polled") in used[-1]
            # spontaneous: value + quality + source time of an MV, and a status change
            stamp = time.time() - 50.0
            questionable = Quality(Validity.QUESTIONABLE, Detail.OLD_DATA).to_bits()
            twin.set("S1/Ua", 11.5, questionable, stamp)
            twin.set("CB1/XPos", 1)
            started = time.monotonic()
            assert await wait_for(lambda: kernel.points.read("S1/Ua").value == pytest.approx(11.5)
                                  and kernel.points.read("CB1/XPos").value == 1, timeout=3.0)
            assert time.monotonic() - started < (1.0 if expected_rcbs else 3.0)
            ua = kernel.points.read("S1/Ua")
            assert ua.quality.to_bits() == questionable and ua.source_time == pytest.approx(stamp, abs=0.002)
            # quality change alone (same value) is reported too
            twin.set("S1/Ua", 11.5, 0, time.time())
            assert await wait_for(lambda: kernel.points.read("S1/Ua").quality.is_good, timeout=3.0)
            if expected_rcbs:  # settings are polled, not reported: a change stays unseen within 1 s
                twin.set("P1/StrVal", 450)
                await asyncio.sleep(1.0)
                assert kernel.points.read("P1/StrVal").value == pytest.approx(400)
                await asyncio.sleep(1.5)  # integrity reports (1 s period) keep the link supervised
                assert kernel.sources["ied1"].connected and kernel.sources["ied1"].counters["link_losses"] == 0
            # commands work while reports flow
            result = await kernel.execute(Command("CB1/Pos", 1, originator="op"))
            assert result.status is CommandStatus.SUCCEEDED, result
            assert await wait_for(lambda: kernel.points.read("CB1/Pos").value == 1, timeout=3.0)
    finally:
        await server.stop()


async def test_twin_bulk_updates_and_commands_do_not_deadlock(point_map):
    """Twin updates (data model lock) racing control handlers (GIL, server thread)."""
    port = free_port()
    twin = make_twin()
    server = Iec61850Server("sim", {"points_file": str(point_map), "port": port}, twin)
    await server.start()
    from dms_iec61850.worker import Worker

    stop = False

    async def churn():
        n = 0
        while not stop:
            twin.set_many({"S1/P": n, "S1/Q": -n, "S1/Ua": n / 2})
            n += 1
            # ~1,000 bulk updates/s keep the data-model lock busy; a bare sleep(0) loop also starved the
            # server thread of the GIL on a loaded 2-core machine (requests timed out, no deadlock)
            await asyncio.sleep(0.001)

    task = asyncio.create_task(churn())
    try:
        # the raw client in a thread (libiec61850 through ctypes, GIL released while it waits): the server's
        # control handler must be served while the loop churns
        def client():
            import ctypes

            from dms_iec61850.native import lib

            con, err = lib.IedConnection_create(), ctypes.c_int(0)
            lib.IedConnection_setRequestTimeout(con, 5000)
            lib.IedConnection_connect(con, ctypes.byref(err), b"127.0.0.1", port)
            assert err.value == 0
            coc = None
            for _ in range(5):  # a request can time out when 2 shared CPUs are saturated
                coc = lib.ControlObjectClient_create(b"IED1LD0/CSWI1.Pos", con)
                if coc:
                    break
                time.sleep(0.2)
            assert coc, "ControlObjectClient_create failed"
            results = []
            for i in range(5):
                val = lib.MmsValue_newBoolean(i % 2 == 0)
                results.append(lib.ControlObjectClient_selectWithValue(coc, val) and lib.ControlObjectClient_operate(coc, val, 0))
                lib.MmsValue_delete(val)
                deadline = time.monotonic() + 5  # the control runs on after the operate response (enhanced)
                while len(twin.commands) < i + 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.05)
            lib.ControlObjectClient_destroy(coc)
            lib.IedConnection_close(con)
            lib.IedConnection_destroy(con)
            return results

        results = await asyncio.wait_for(asyncio.to_thread(client), 20)
        assert all(results)
        assert await wait_for(lambda: len(twin.commands) == 5)
    finally:
        stop = True
        await task
        await server.stop()
    del Worker


class _HostilePeer:
    """A TCP server that answers with garbage (or nothing) on every connection."""

    def __init__(self, payloads):
        self.payloads = payloads
        self.connections = 0

    async def handle(self, reader, writer):
        self.connections += 1
        payload = self.payloads[(self.connections - 1) % len(self.payloads)]
        try:
            await asyncio.wait_for(reader.read(4096), 0.5)
        except asyncio.TimeoutError:
            pass
        if payload is not None:
            writer.write(payload)
            await writer.drain()
            await asyncio.sleep(0.05)
        else:
            try:
                await asyncio.sleep(2.0)  # accept and say nothing
            except asyncio.CancelledError:
                pass
        writer.close()


GARBAGE = [
    b"\x03\x00\x00\x05\x00",  # TPKT with a truncated COTP
    b"\x03\x00\xff\xff" + b"\xaa" * 2000,  # oversized TPKT length
    b"GET / HTTP/1.1\r\n\r\n",  # not TPKT at all
    b"\x03\x00\x00\x16\x11\xd0\x00\x01\x00\x02\x00\xc0\x01\x0a\xc2\x02\x00\x01\xc1\x02\x00\x01",  # CC then nothing MMS
    None,  # connect and stay silent
]


async def test_hostile_peer_is_logged_and_survived(make_kernel, point_map, tmp_path, caplog):
    """The source talks to a garbage-sending peer, and another good source keeps working."""
    good_port, bad_port = free_port(), free_port()
    twin = make_twin()
    server = Iec61850Server("sim", {"points_file": str(point_map), "port": good_port}, twin)
    await server.start()
    peer = _HostilePeer(GARBAGE)
    hostile = await asyncio.start_server(peer.handle, "127.0.0.1", bad_port)
    bad_map = tmp_path / "bad.csv"
    write_point_map(bad_map, [PointMapEntry("X/P", "IED9LD0/MMXU1.TotW.mag.f", PointKind.ANALOG, 1.0)])
    text = deployment(point_map, good_port) + f'''
[[sources]]
name = "bad"
type = "iec61850"
[sources.settings]
points_file = "{bad_map}"
port = {bad_port}
poll_period_s = 0.1
reconnect_min_s = 0.05
reconnect_max_s = 0.1
connect_timeout_s = 0.3
'''
    kernel = make_kernel(("iec61850", iec61850_plugin), sink_types, deployment=text)
    caplog.set_level(logging.INFO)
    try:
        async with kernel:
            assert await wait_for(lambda: peer.connections >= len(GARBAGE) + 1, timeout=15.0)
            twin.set("S1/P", 9.75)
            assert await wait_for(lambda: kernel.points.read("S1/P").value == pytest.approx(9.75))
            assert kernel.points.read("S1/P").quality.is_good
            assert not kernel.points.read("X/P").quality.is_good
            assert kernel.sources["bad"]._process is not None
            assert any("connect to 127.0.0.1" in record.getMessage() for record in caplog.records)
    finally:
        hostile.close()
        await hostile.wait_closed()
        await server.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=st.binary(min_size=0, max_size=300), mutate=st.booleans())
def test_fuzz_frames_toward_the_server(frame, mutate, _fuzz_server):
    """Random and mutated TPKT/COTP/MMS frames to the simulator server: it stays up and keeps serving."""
    port = _fuzz_server
    if mutate:  # a valid-looking TPKT header around random bytes
        frame = b"\x03\x00" + (len(frame) + 4).to_bytes(2, "big") + frame
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        try:
            sock.sendall(frame)
            sock.settimeout(0.05)
            sock.recv(1024)
        except OSError:
            pass


@pytest.fixture(scope="module")
def _fuzz_server(tmp_path_factory):
    from dms_iec61850.lib import iec

    path = tmp_path_factory.mktemp("fuzz") / "map.csv"
    write_point_map(path, POINTS)
    port = free_port()
    twin = make_twin()
    loop = asyncio.new_event_loop()
    server = Iec61850Server("fuzz", {"points_file": str(path), "port": port}, twin)
    loop.run_until_complete(server.start())
    try:
        yield port
        # still serving after the fuzzing
        con = iec.IedConnection_create()
        _, err = iec.IedConnection_connect(con, "127.0.0.1", port)
        assert err == 0
        value, err = iec.IedConnection_readFloatValue(con, "IED1LD0/MMXU1.TotW.mag.f", iec.IEC61850_FC_MX)
        assert err == 0 and value == pytest.approx(1.5)
        iec.IedConnection_close(con)
        iec.IedConnection_destroy(con)
    finally:
        loop.run_until_complete(server.stop())
        loop.close()
