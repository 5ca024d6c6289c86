"""Hostile peers and fuzzing of the decoder-facing path of the DNP3 master source."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dms_dnp3.plugin
from dms_dnp3.addresses import AddressError, Group, parse_address, quality_from_flags
from dms_dnp3.server import Dnp3OutstationServer
from dms_dnp3.source import _Collector, _master_class
from dms_hookspecs import Quality, Validity
from dms_simulator import write_point_map
from plugins_for_tests import test_types
from dnp3_support import POINTS, free_port, make_twin, wait_for

from dnp3.application.builder import build_response
from dnp3.application.fragment import ObjectBlock
from dnp3.application.qualifiers import ObjectHeader, PrefixCode, RangeCode
from dnp3.datalink.builder import build_unconfirmed_user_data
from dnp3.datalink.parser import FrameParser
from dnp3.transport.segmenter import Segmenter


def analog_response(value: int, seq: int = 0) -> bytes:
    """A valid g30v1 response fragment for index 0 (built with dnp3py's own builders)."""
    header = ObjectHeader.build(group=30, variation=1, prefix=PrefixCode.NONE, range_code=RangeCode.UINT8_START_STOP)
    data = bytes([0, 0, 0x01]) + value.to_bytes(4, "little", signed=True)
    return build_response((ObjectBlock(header=header, data=data),), seq=seq).to_bytes()


def frames(fragment: bytes, source: int, destination: int = 1) -> bytes:
    out = b""
    for segment in Segmenter().segment(fragment):
        out += build_unconfirmed_user_data(destination=destination, source=source, dir_from_master=False,
                                           user_data=segment.to_bytes()).to_bytes()
    return out


def hostile_payloads() -> list[bytes | None]:
    good = frames(analog_response(777_777), source=10)
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    return [
        None,  # connects and says nothing
        os.urandom(600),  # line noise
        bytes(bad_crc),  # CRC error
        frames(analog_response(888_888), source=99),  # a foreign outstation's values
        frames(analog_response(999_999), source=10, destination=77),  # addressed to another master
        b"\x05\x64\xff\xc4\x01\x00\x0a\x00" + b"\x00" * 300,  # wrong length, junk body
        b"\x05\x64" * 5000,  # oversized stream of start octets
        frames(bytes([0xC0, 0x81, 0x00, 0x00, 0xFE, 0xFE, 0x00, 0x00, 0x05]) + os.urandom(40), source=10),  # unknown object
    ]


async def test_hostile_peer_never_crashes_the_source(make_kernel, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    payloads = hostile_payloads()
    served: list[int] = []

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = len(served)
        served.append(n)
        payload = payloads[n % len(payloads)]
        try:
            await asyncio.wait_for(reader.read(292), 1.0)
            if payload is not None:
                writer.write(payload)
                await writer.drain()
            await asyncio.sleep(0.4)
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    hostile_server = await asyncio.start_server(hostile, "127.0.0.1", 0)
    hostile_port = hostile_server.sockets[0].getsockname()[1]
    good_file = tmp_path / "good.csv"
    write_point_map(good_file, POINTS)
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text("point,address,kind,scale\nX/P,analog:0,analog,1\nX/B,binary:0,binary,1\n")
    twin = make_twin()
    port = free_port()
    sim = Dnp3OutstationServer("sim", {"port": port, "points_file": str(good_file)}, twin)
    await sim.start()
    common = "response_timeout_s = 0.3\nreconnect_min_s = 0.05\nreconnect_max_s = 0.1\nevent_poll_s = 0.1"
    text = f'''
[deployment]
name = "hostile"
[[sources]]
name = "good"
type = "dnp3"
[sources.settings]
host = "127.0.0.1"
port = {port}
points_file = "{good_file}"
{common}
[[sources]]
name = "evil"
type = "dnp3"
[sources.settings]
host = "127.0.0.1"
port = {hostile_port}
points_file = "{bad_file}"
{common}
'''
    kernel = make_kernel(("dnp3", dms_dnp3.plugin), ("tests", test_types), deployment=text)
    try:
        async with kernel:
            read = kernel.points.read
            await wait_for(lambda: read("S1/P").quality.is_good, what="good source up")
            await wait_for(lambda: len(served) >= 2 * len(payloads), timeout=20, what="every hostile payload served twice")
            # the hostile source is alive, reconnecting, and never took a foreign value
            evil = kernel.sources["evil"]
            assert evil.sessions >= len(payloads)
            assert read("X/P").quality.validity is Validity.INVALID
            assert read("X/P").value not in (777_777.0, 888_888.0, 999_999.0)
            assert kernel.counters["source_restarts"] == 0
            # the good source is unaffected
            twin.set("S1/P", 55.5)
            await wait_for(lambda: read("S1/P").value == pytest.approx(55.5), what="good source still live")
            assert read("S1/P").quality.is_good
            assert any(f"127.0.0.1:{hostile_port}" in r.getMessage() for r in caplog.records), "failures name the connection"
    finally:
        await sim.stop()
        hostile_server.close()
        await hostile_server.wait_closed()


VALID = [analog_response(5), analog_response(-1, seq=3)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=300),
    st.builds(lambda base, pos, byte: base[:pos % len(base)] + bytes([byte]) + base[pos % len(base) + 1:],
              st.sampled_from(VALID), st.integers(0, 1000), st.integers(0, 255)),
    st.builds(lambda base, cut: base[:cut], st.sampled_from(VALID), st.integers(0, 30)),
    st.builds(lambda base, tail: base + tail, st.sampled_from(VALID), st.binary(max_size=60)),
))
def test_fuzz_application_decoder(data):
    """dnp3py's response decoder behind our master never raises, whatever the fragment."""
    from dnp3.master.config import MasterConfig

    collector = _Collector()
    master = _master_class()(config=MasterConfig(), handler=collector)
    master.process_response(data)
    for group, index, raw, flags, ts in collector.rows:
        assert isinstance(group, Group)
        Quality.from_bits(quality_from_flags(flags, group))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=120), st.sampled_from([frames(v, 10) for v in VALID])), max_size=6))
def test_fuzz_link_layer_parser(chunks):
    """The frame parser (CRC, lengths, start octets) survives arbitrary byte streams."""
    parser = FrameParser()
    for chunk in chunks:
        for frame in parser.feed(chunk):
            assert frame.header is not None


@given(st.text(max_size=30))
def test_fuzz_address_parser(text):
    try:
        parse_address(text)
    except AddressError:
        pass


def test_quality_mapping_all_flag_octets():
    for flags in range(256):
        for group in Group:
            quality = Quality.from_bits(quality_from_flags(flags, group))
            if not flags & 0x01:
                assert quality.validity is Validity.INVALID
