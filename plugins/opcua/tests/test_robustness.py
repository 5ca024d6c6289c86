"""Hostile and garbled peers: the source survives them, the server survives fuzzed input."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
import threading
from datetime import UTC, datetime

import numpy as np
from asyncua import Client, ua
from asyncua.ua.ua_binary import uatcp_to_binary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plugins_for_tests import test_types

import dms_opcua.plugin
from dms_hookspecs import Command, PointKind, Quality, Validity
from dms_opcua import OpcUaServer, OpcUaSource
from dms_opcua.testing import eventually, free_port, make_twin
from dms_simulator import PointMapEntry, write_point_map

PLUGINS = (("opcua", dms_opcua.plugin), ("test_types", test_types))


def _ack(**sizes) -> bytes:
    return uatcp_to_binary(ua.MessageType.Acknowledge, ua.Acknowledge(**sizes))


async def _read_some(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(65536), 2.0)
    except (TimeoutError, ConnectionError):
        return b""


async def garbage(reader, writer):
    writer.write(b"\x00\xffHELLO? this is not OPC UA\r\n" * 20)
    await writer.drain()
    await _read_some(reader)


async def absurd_ack(reader, writer):
    await _read_some(reader)  # the client's HEL
    writer.write(_ack(ProtocolVersion=0xFFFFFFFF, ReceiveBufferSize=1, SendBufferSize=0xFFFFFFFF, MaxMessageSize=8, MaxChunkCount=0xFFFFFFFF))
    await writer.drain()
    await _read_some(reader)


async def oversized(reader, writer):
    await _read_some(reader)
    writer.write(_ack())
    await _read_some(reader)  # OPN request
    # an OPN response whose header claims 4 GiB, followed by a little junk
    writer.write(b"OPNF" + struct.pack("<I", 0xFFFFFFF0) + struct.pack("<I", 1) + b"\x00" * 64)
    await writer.drain()
    await _read_some(reader)


async def unexpected_type(reader, writer):
    await _read_some(reader)
    writer.write(b"XYZF" + struct.pack("<I", 16) + b"\x01" * 8)  # unknown message type
    writer.write(uatcp_to_binary(ua.MessageType.Error, ua.ErrorMessage(ua.StatusCode(ua.StatusCodes.BadTcpInternalError), "go away")))
    await writer.drain()
    await _read_some(reader)


async def silent(reader, writer):
    await asyncio.sleep(30)  # connect and say nothing


BEHAVIOURS = {"garbage": garbage, "absurd_ack": absurd_ack, "oversized": oversized, "unexpected_type": unexpected_type, "silent": silent}


async def test_hostile_peers_never_crash_the_source_or_touch_other_points(make_kernel, twin, points_file, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="leitstand")
    good_port = free_port()
    peers: dict[str, asyncio.Server] = {}
    connections = dict.fromkeys(BEHAVIOURS, 0)
    handlers: set[asyncio.Task] = set()
    sources = ""
    for name, behaviour in BEHAVIOURS.items():

        async def handle(reader, writer, name=name, behaviour=behaviour):
            connections[name] += 1
            handlers.add(asyncio.current_task())
            try:
                await behaviour(reader, writer)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        peers[name] = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = peers[name].sockets[0].getsockname()[1]
        path = tmp_path / f"{name}.csv"
        write_point_map(path, [PointMapEntry(f"{name}/P", "ns=2;s=Trafo_0-1/P"), PointMapEntry(f"{name}/CB", "ns=2;s=switch_6/Pos", PointKind.DOUBLE)])
        sources += f'''
[[sources]]
name = "{name}"
type = "opcua"
[sources.settings]
points_file = "{path}"
port = {port}
timeout_s = 0.5
reconnect_min_s = 0.1
reconnect_max_s = 0.4
'''
    server = OpcUaServer("sim", {"port": good_port, "points_file": str(points_file)}, twin)
    await server.start()
    try:
        kernel = make_kernel(*PLUGINS, deployment=f'''
[deployment]
name = "hostile"
[[sources]]
name = "good"
type = "opcua"
[sources.settings]
points_file = "{points_file}"
port = {good_port}
publishing_interval_ms = 20
{sources}
[[sinks]]
name = "log"
type = "list"
''')
        async with kernel:
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.is_good)
            for value in (1.0, 2.0, 3.0):
                twin.set("Trafo_0-1/P", value)
                await eventually(lambda value=value: kernel.points.read("Trafo_0-1/P").value == value)
            await eventually(lambda: all(count >= 2 for count in connections.values()), timeout=5.0)  # every source retried
            assert kernel.counters["source_restarts"] == 0 and kernel.counters["malformed_batches"] == 0
            for name in BEHAVIOURS:
                m = kernel.points.read(f"{name}/P")
                assert m.quality.validity is Validity.INVALID, (name, m)
                port = peers[name].sockets[0].getsockname()[1]
                assert any(f"127.0.0.1:{port}" in r.getMessage() and "connect failed" in r.getMessage() for r in caplog.records), name
            # the command path to a source that is not connected fails cleanly
            result = await kernel.execute(Command("garbage/CB", 1))
            assert result.status.value == "failed" and "not connected" in result.reason
            twin.set("Trafo_0-1/P", 4.0)
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").value == 4.0)
            assert kernel.points.read("Trafo_0-1/P").quality.is_good
    finally:
        await server.stop()
        for peer in peers.values():
            peer.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for peer in peers.values():
            await peer.wait_closed()


class _Proxy:
    """A TCP proxy in front of the OPC UA server: ``inject`` writes to the client's side of the
    newest connection, ``frozen`` set swallows everything in both directions (a hung peer)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inject: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task] = set()
        self.frozen = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                if self.frozen.is_set():
                    continue  # swallow: the peer hangs
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer):
        self.tasks.add(asyncio.current_task())
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.inject.append(client_writer)
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer), return_exceptions=True)

    async def start(self, proxy_port: int) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", proxy_port)

    def garble(self) -> None:
        self.inject[-1].write(b"MSGF" + struct.pack("<I", 40) + b"\xde\xad\xbe\xef" * 8)  # a MSG chunk for a channel that does not exist

    async def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


def _proxied_deployment(points_file, proxy_port: int) -> str:
    return f'''
[deployment]
name = "garbled"
[[sources]]
name = "ua"
type = "opcua"
[sources.settings]
points_file = "{points_file}"
port = {proxy_port}
publishing_interval_ms = 20
timeout_s = 0.5
watchdog_s = 0.5
reconnect_min_s = 0.2
[[sinks]]
name = "log"
type = "list"
'''


async def test_garbled_or_hung_peer_mid_session_cause_a_clean_reconnect(make_kernel, twin, points_file):
    """Through a proxy: garbage injected into an established session, then a peer that stops
    answering (socket open, nothing comes back): invalid within 2 s each time, then good again."""
    port, proxy_port = free_port(), free_port()
    proxy = _Proxy(port)
    await proxy.start(proxy_port)
    server = OpcUaServer("sim", {"port": port, "points_file": str(points_file)}, twin)
    await server.start()
    try:
        kernel = make_kernel(*PLUGINS, deployment=_proxied_deployment(points_file, proxy_port))
        async with kernel:
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.is_good)
            proxy.garble()
            took = await eventually(lambda: not kernel.points.read("Trafo_0-1/P").quality.is_good, timeout=2.0)
            assert took < 2.0
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.is_good, timeout=5.0)

            proxy.frozen.set()
            took = await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.validity is Validity.INVALID, timeout=2.0)
            assert took < 2.0
            proxy.frozen.clear()
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.is_good, timeout=6.0)
            assert kernel.counters["source_restarts"] == 0
    finally:
        await server.stop()
        await proxy.stop()


async def test_peer_hanging_between_integrity_read_and_subscription_invalidates_again(make_kernel, twin, points_file, monkeypatch):
    """A reconnect's integrity read publishes good values; if the peer hangs before the
    subscription is set up, the values must go invalid again (this outage is a new one), not
    stay good because the previous outage was already reported."""
    import dms_opcua.source as source_module

    port, proxy_port = free_port(), free_port()
    proxy = _Proxy(port)
    await proxy.start(proxy_port)
    server = OpcUaServer("sim", {"port": port, "points_file": str(points_file)}, twin)
    await server.start()
    sessions: list[str] = []
    hung = asyncio.Event()
    original_init = source_module._Feed.init

    async def init_then_maybe_hang(feed, *args, **kwargs):
        sessions.append("subscribe")
        if len(sessions) == 2:  # the session after the garbled one: its integrity read is published
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.is_good, timeout=3.0)
            proxy.frozen.set()
            hung.set()
        return await original_init(feed, *args, **kwargs)

    monkeypatch.setattr(source_module._Feed, "init", init_then_maybe_hang)
    try:
        kernel = make_kernel(*PLUGINS, deployment=_proxied_deployment(points_file, proxy_port))
        async with kernel:
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.is_good)
            proxy.garble()
            await eventually(lambda: not kernel.points.read("Trafo_0-1/P").quality.is_good, timeout=2.0)
            await asyncio.wait_for(hung.wait(), 5.0)
            took = await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.validity is Validity.INVALID, timeout=2.0)
            assert took < 2.0
            proxy.frozen.clear()
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.is_good, timeout=6.0)
            assert len(sessions) >= 3
    finally:
        await server.stop()
        await proxy.stop()


# -- fuzzing ---------------------------------------------------------------------------

_U32 = st.integers(0, 0xFFFFFFFF)
_TYPES = st.sampled_from([b"HEL", b"ACK", b"ERR", b"OPN", b"MSG", b"CLO", b"RHE", b"\x00\x00\x00"])
_CHUNKS = st.sampled_from([b"F", b"C", b"A", b"\xff"])


@st.composite
def frames(draw) -> bytes:
    """OPC UA binary input for the server: random bytes, HELs with absurd sizes, headers with any
    size and body, and mutated valid HELs, possibly followed by more frames."""
    kind = draw(st.sampled_from(["random", "hello", "header", "mutated"]))
    if kind == "random":
        data = draw(st.binary(max_size=300))
    elif kind == "hello":
        hello = ua.Hello(draw(_U32), draw(_U32), draw(_U32), draw(_U32), draw(_U32), draw(st.text(max_size=40)))
        data = uatcp_to_binary(ua.MessageType.Hello, hello)
    elif kind == "header":
        body = draw(st.binary(max_size=200))
        size = draw(st.one_of(st.just(len(body) + 8), _U32))
        data = draw(_TYPES) + draw(_CHUNKS) + struct.pack("<I", size) + body
    else:
        data = bytearray(uatcp_to_binary(ua.MessageType.Hello, ua.Hello(EndpointUrl="opc.tcp://127.0.0.1:4840")))
        for position, byte in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=6)):
            data[position] = byte
        data = bytes(data[: draw(st.integers(1, len(data)))])
    if draw(st.booleans()):
        data += draw(st.binary(max_size=100))
    return data


def test_fuzzed_input_never_stops_the_server(points_file):
    """Hypothesis-generated OPC UA binary input toward the simulator server, while a good
    client stays connected and keeps being served."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="opcua-fuzz-loop", daemon=True)
    thread.start()

    def call(coro, timeout=10.0):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    twin = make_twin()
    port = free_port()
    server = OpcUaServer("sim", {"port": port, "points_file": str(points_file)}, twin)
    call(server.start())
    good = Client(f"opc.tcp://127.0.0.1:{port}", timeout=2)
    silent = socket.create_connection(("127.0.0.1", port))  # connects and never sends
    try:
        call(good.connect())
        node = good.get_node("ns=2;s=Trafo_0-1/P")
        sent = 0

        @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
        @given(payload=frames())
        def attack(payload: bytes) -> None:
            nonlocal sent
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                try:
                    sock.sendall(payload)
                    sock.shutdown(socket.SHUT_WR)
                    sock.settimeout(0.05)
                    sock.recv(65536)
                except OSError:
                    pass  # reset or timeout: the server may drop us
            sent += 1
            if sent % 50 == 0:  # the good client is served throughout
                assert call(node.read_value()) == twin.read("Trafo_0-1/P")[0]

        attack()
        loop.call_soon_threadsafe(twin.set, "Trafo_0-1/P", 77.5)
        for _ in range(100):
            if call(node.read_value()) == 77.5:
                break
        assert call(node.read_value()) == 77.5
        fresh = Client(f"opc.tcp://127.0.0.1:{port}", timeout=2)
        call(fresh.connect())
        assert call(fresh.get_node("ns=2;s=switch_6/Pos").read_value()) == 2
        call(fresh.disconnect())
    finally:
        silent.close()
        try:
            call(good.disconnect())
        except Exception:  # noqa: BLE001
            pass
        call(server.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


class _Recorder:
    """A SourceContext stand-in that records batches (for fuzzing the conversion alone)."""

    log = logging.getLogger("test")

    def __init__(self) -> None:
        self.batches = []

    def point_numbers(self, points):
        return np.arange(len(points))

    def publish(self, batch):
        self.batches.append(batch)

    def raise_alarm(self, alarm):
        pass


_VARIANTS = st.one_of(
    st.none(),
    st.builds(lambda v: ua.Variant(v, ua.VariantType.Double), st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda v: ua.Variant(v, ua.VariantType.Int32), st.integers(-(2**31), 2**31 - 1)),
    st.builds(lambda v: ua.Variant(v, ua.VariantType.Boolean), st.booleans()),
    st.builds(lambda v: ua.Variant(v, ua.VariantType.String), st.text(max_size=10)),
    st.builds(lambda v: ua.Variant(v, ua.VariantType.Double), st.lists(st.floats(), max_size=3)),
    st.just(ua.Variant(None, ua.VariantType.Null)),
)
_TIMES = st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)), st.datetimes(), st.just(datetime(1601, 1, 1, tzinfo=UTC)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(st.integers(-3, 8), _VARIANTS, st.one_of(st.none(), _U32), _TIMES), max_size=8))
def test_fuzzed_notifications_never_break_the_source(points_file, items):
    """Any DataValue the library may decode (wrong types, arrays, null, any status, any time,
    unknown client handles) becomes a well-formed batch or is ignored."""
    source = OpcUaSource("ua", {"points_file": str(points_file)})
    context = _Recorder()
    source._numbers = np.arange(len(source.entries))
    notifications = []
    for handle, variant, status, stamp in items:
        dv = ua.DataValue(Value=variant, StatusCode=None if status is None else ua.StatusCode(status), SourceTimestamp=stamp)
        notifications.append(ua.MonitoredItemNotification(ClientHandle=handle, Value=dv))
    source._on_items(context, notifications)
    for batch in context.batches:
        assert len(batch.points) == len(batch.values) == len(batch.quality) == len(batch.source_time)
        assert all(0 <= p < len(source.entries) for p in batch.points)
        for bits in batch.quality:
            Quality.from_bits(int(bits))  # a valid packed quality
        assert all(not math.isnan(t) for t in batch.source_time)
