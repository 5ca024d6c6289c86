"""Hostile and garbled peers: logged with the connection, never crash the source or touch other points."""

from __future__ import annotations

import asyncio
import json
import logging
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dms_dlms.plugin
import plugins_for_tests as p
from dms_dlms.client import DlmsClient, DlmsError, _Link
from dms_dlms.server import _Association, _Request
from dms_dlms.testing import MeterRig, wait_for
from dms_hookspecs import Validity
from gurux_dlms import GXByteBuffer, GXReplyData

HOSTILE_MAP = "point,address,kind,scale\nM2/P,1.0.1.7.0.255:2,analog,1\nM2/E,1.0.1.8.0.255:2,counter,1\n"


def recorded_frames(rig: MeterRig) -> dict[str, bytes]:
    """Real frames of the simulated meter, as mutation seeds: an AARE and a get-with-list response."""
    meter = _Association(rig.server, "recorder")
    client = DlmsClient("127.0.0.1", 1).codec
    frames = {}
    for request in client.aarqRequest():
        r = _Request(request, "recorder")
        meter.handleRequest(r)
        frames["aare"] = bytes(r.reply)
        reply = GXReplyData()
        client.getData(GXByteBuffer(bytearray(r.reply)), reply)
        client.parseAareResponse(reply.data)
    r = _Request(client.getObjectsRequest(), "recorder")
    meter.handleRequest(r)
    frames["objects"] = bytes(r.reply)
    return frames


class HostilePeer:
    """A raw TCP server on loopback that answers every request according to ``mode``."""

    def __init__(self, mode: str, frames: dict[str, bytes]) -> None:
        self.mode = mode
        self.frames = frames
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None
        self.rng = random.Random(5)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.mode == "close":
                return
            while data := await reader.read(4096):
                if self.mode == "silent":
                    continue
                if self.mode == "garbage":
                    writer.write(bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 300))))
                elif self.mode == "oversized":
                    writer.write(b"\x00\x01\x00\x01\x00\x10\xff\xff" + b"\xc4" * 65535 + b"\x00" * (2 << 20))
                elif self.mode == "wrong_address":
                    frame = bytearray(self.frames["aare"])
                    frame[2:6] = b"\x00\x07\x00\x63"  # source 7, destination 99: not ours
                    writer.write(bytes(frame))
                elif self.mode == "unexpected_apdu":
                    writer.write(self.frames["objects"])  # a get response where an AARE is due
                elif self.mode == "bad_version":
                    frame = bytearray(self.frames["aare"])
                    frame[0:2] = b"\x00\x09"
                    writer.write(bytes(frame))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def two_meter_deployment(rig: MeterRig, hostile_port: int, hostile_map) -> str:
    good = rig.source_settings()
    bad = rig.source_settings(port=hostile_port, points_file=str(hostile_map))
    inline = lambda s: ", ".join(f"{k} = {json.dumps(v)}" for k, v in s.items())  # noqa: E731
    return f"""
[deployment]
name = "dlms-hostile"
[[sources]]
name = "meter1"
type = "dlms"
settings = {{ {inline(good)} }}
[[sources]]
name = "hostile"
type = "dlms"
settings = {{ {inline(bad)} }}
[[sinks]]
name = "events"
type = "list"
"""


@pytest.mark.parametrize("mode", ["silent", "garbage", "oversized", "wrong_address", "unexpected_apdu", "bad_version", "close"])
async def test_hostile_peer_is_logged_and_survived(rig, make_kernel, tmp_path, caplog, mode):
    caplog.set_level(logging.INFO)
    hostile = HostilePeer(mode, recorded_frames(rig))
    port = await hostile.start()
    hostile_map = tmp_path / "hostile.csv"
    hostile_map.write_text(HOSTILE_MAP)
    kernel = make_kernel(("dlms", dms_dlms.plugin), p.test_types, deployment=two_meter_deployment(rig, port, hostile_map))
    try:
        async with kernel:
            await wait_for(lambda: kernel.points.read("M1/P").quality.is_good)
            await wait_for(lambda: hostile.connections >= 2, timeout=4.0)  # it reconnects
            for point in ("M2/P", "M2/E"):
                assert kernel.points.read(point).quality.validity is Validity.INVALID
            # the good meter is untouched and still polled
            rig.twin.set("M1/P", 4242.0)
            await wait_for(lambda: kernel.points.read("M1/P").value == 4242.0)
            assert kernel.counters["source_restarts"] == 0
            assert kernel.counters["malformed_batches"] == 0
            tasks = {t.get_name(): t for t in kernel._source_tasks}
            assert not tasks["source:hostile"].done()
        assert f"127.0.0.1:{port}" in caplog.text  # logged with the connection
    finally:
        await hostile.stop()


async def test_meter_survives_hostile_clients(rig, kernel_for):
    """Garbage, oversized and half frames sent to the simulated meter: it keeps serving the source."""
    kernel = kernel_for(rig)
    async with kernel:
        await wait_for(lambda: kernel.points.read("M1/P").quality.is_good)
        rng = random.Random(7)
        payloads = [b"", b"\x00\x01\x00\x10\x00\x01\xff\xff" + b"A" * 70000, b"\x00\x01\x00\x10"]
        payloads += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) for _ in range(20)]
        for payload in payloads:
            reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
            writer.write(payload)
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.close()
        rig.twin.set("M1/P", 77.0)
        await wait_for(lambda: kernel.points.read("M1/P").value == 77.0)
        assert kernel.points.read("M1/P").quality.is_good


# -- fuzzing the client's frame handling (the decoder-facing path), in process ----------------------


class _Answering:
    """Transport stand-in: every request written is answered with ``payload`` (a fuzzed meter)."""

    def __init__(self, link: _Link, payload: bytes) -> None:
        self.link, self.payload = link, payload

    def write(self, data):
        asyncio.get_running_loop().call_soon(self.link.data_received, self.payload)

    def close(self):
        pass


def _exchange(payload: bytes, stage: str, seeds) -> None:
    """Run the client's decode path on ``payload``: as the AARE, or as the association view reply."""

    async def go():
        client = DlmsClient("127.0.0.1", 1, request_timeout_s=0.005, max_frame_bytes=4096)
        link = _Link()
        client._link = link
        try:
            if stage == "objects":  # associate for real first, then receive the fuzzed reply
                link.connection_made(_Answering(link, seeds["aare"]))
                await _associate(client)
            link.connection_made(_Answering(link, payload))
            if stage == "aare":
                await _associate(client)
            else:
                await client.read_object_list()
        except DlmsError:
            pass  # the only allowed failure: a DlmsError (protocol error, refusal, timeout)

    asyncio.run(go())


async def _associate(client: DlmsClient) -> None:
    """DlmsClient.connect() after the TCP connect."""
    reply = GXReplyData()
    for frame in client.codec.aarqRequest():
        reply.clear()
        await client._exchange(frame, reply)
    try:
        client.codec.parseAareResponse(reply.data)
    except Exception as exc:  # noqa: BLE001 - connect() turns this into a DlmsError too
        raise DlmsError(str(exc)) from None


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    rig = MeterRig(tmp_path_factory.mktemp("seeds"))
    return recorded_frames(rig)


def _mutate(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for position, value, action in edits:
        if not buf:
            break
        position %= len(buf)
        if action == 0:
            buf[position] = value
        elif action == 1:
            del buf[position:]
        else:
            buf.insert(position, value)
    return bytes(buf)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300), stage=st.sampled_from(["aare", "objects"]))
def test_fuzz_random_bytes(payload, stage, seeds):
    _exchange(payload, stage, seeds)


@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stage=st.sampled_from(["aare", "objects"]),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 2)), min_size=1, max_size=6),
)
def test_fuzz_mutated_real_frames(stage, edits, seeds):
    _exchange(_mutate(seeds[stage], edits), stage, seeds)


def test_fuzz_harness_accepts_the_real_frames(seeds):
    """Sanity: unmutated frames decode (so the fuzzers really reach the decoder)."""

    async def go():
        client = DlmsClient("127.0.0.1", 1, request_timeout_s=0.5)
        link = _Link()
        client._link = link
        link.connection_made(_Answering(link, seeds["aare"]))
        await _associate(client)
        link.connection_made(_Answering(link, seeds["objects"]))
        objects = await client.read_object_list()
        assert "1.0.1.7.0.255" in {o.logicalName for o in objects}

    asyncio.run(go())
