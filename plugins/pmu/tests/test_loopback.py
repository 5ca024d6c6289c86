"""Source ↔ simulated PMUs over real loopback sockets: parsing, alignment, quality, stalls, link loss."""

from __future__ import annotations

import logging
import math
import time

import pytest

from dms_hookspecs import Alarm, AlarmState, Detail, Quality, QualitySource, Validity
from dms_pmu import codec
from dms_pmu.testing import wait_until
from plugins_for_tests import ListSink


def q(kernel, name):
    return kernel.points.read(name).quality


def alarms(category=None, state=None):
    found = ListSink.instances["log"].of_type(Alarm)
    return [a for a in found if (category is None or a.category == category) and (state is None or a.state is state)]


async def test_frames_parsed_with_pmu_timestamp(rig, kernel_for):
    async with kernel_for(rig) as kernel:
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good and q(kernel, "pmu2/V1/mag").is_good, what="both PMUs")
        m = kernel.points.read("pmu1/V1/mag")
        assert m.value == pytest.approx(20.0 / math.sqrt(3), rel=1e-6)  # kV line-to-line in the twin → phase kV
        assert kernel.points.read("pmu2/V1/ang_deg").value == pytest.approx(-1.5, abs=1e-5)
        assert kernel.points.read("pmu1/freq_hz").value == pytest.approx(50.0, abs=0.02)
        assert abs(kernel.points.read("pmu1/rocof_hz_s").value) < 0.1
        # source time is the PMU's SOC + FRACSEC: on the 50 frames/s grid, shortly before now
        assert 0 <= time.time() - m.source_time < 1.0
        assert round(m.source_time * 50) == pytest.approx(m.source_time * 50, abs=1e-3)
        # twin changes reach the phasors
        rig.twin.set("n2/ang", -3.25)
        await wait_until(lambda: kernel.points.read("pmu2/V1/ang_deg").value == pytest.approx(-3.25, abs=1e-4), what="angle change")


async def test_two_pmus_time_aligned(rig, kernel_for):
    async with kernel_for(rig) as kernel:
        source = kernel.sources["pdc"]
        await wait_until(lambda: source.complete_sets > 40, what="40 aligned sets")
        counters = source.aligner.counters
        assert counters["pmu1"].frames > 40 and counters["pmu2"].frames > 40
        # one set per timestamp with both PMUs; at most the first frame of the later connection misses its set
        assert source.complete_sets >= source.published_sets - 2
        lost = sum(c.missing + c.late for c in counters.values())
        assert lost <= 2


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        (0x0000, Quality()),
        (0x4000, Quality(Validity.INVALID, Detail.FAILURE)),
        (0x8000, Quality(Validity.INVALID, test=True)),
        (0xC000, Quality(Validity.INVALID, Detail.FAILURE)),
        (0x2000, Quality(Validity.QUESTIONABLE, Detail.INACCURATE)),
        (0x1000, Quality(Validity.QUESTIONABLE, Detail.INCONSISTENT)),
        (0x0200, Quality(source=QualitySource.SUBSTITUTED)),
        (0x01C0, Quality(Validity.QUESTIONABLE, Detail.INACCURATE)),  # time quality 111
        (0x0020, Quality(Validity.QUESTIONABLE, Detail.INACCURATE)),  # unlocked >= 100 s
        (0x0140 | 0x0010, Quality()),  # time quality < 1 ms, unlocked < 100 s: fine
        (0x6000, Quality(Validity.INVALID, Detail.FAILURE | Detail.INACCURATE)),
    ],
)
async def test_stat_bits_mapped_to_quality(rig, kernel_for, stat, expected):
    async with kernel_for(rig) as kernel:
        rig.servers["pmu1"].stat = stat
        await wait_until(lambda: q(kernel, "pmu1/V1/mag") == expected and q(kernel, "pmu1/freq_hz") == expected, what=f"STAT {stat:#06x}")
        await wait_until(lambda: q(kernel, "pmu2/V1/mag").is_good, what="pmu2 unaffected")


async def test_trigger_bit_raises_an_event_alarm_and_keeps_quality(rig, kernel_for):
    async with kernel_for(rig) as kernel:
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good, what="data")
        rig.servers["pmu1"].stat = 0x0800 | 5  # trigger, df/dt high
        await wait_until(lambda: alarms("pmu-trigger", AlarmState.RAISED), what="trigger alarm")
        assert "df/dt high" in alarms("pmu-trigger")[0].message
        assert q(kernel, "pmu1/V1/mag").is_good


async def test_stalled_pmu_reported_while_others_continue(rig, kernel_for):
    async with kernel_for(rig) as kernel:
        source = kernel.sources["pdc"]
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good and q(kernel, "pmu2/V1/mag").is_good, what="both PMUs")
        rig.servers["pmu2"].stall()
        await wait_until(lambda: q(kernel, "pmu2/V1/mag") == Quality(Validity.INVALID, Detail.OLD_DATA), what="pmu2 stalled")
        # the alarm travels through the bus (asynchronous): wait for it rather than expect it with the quality
        await wait_until(lambda: [a for a in alarms("comms", AlarmState.RAISED) if "stalled" in a.message], what="stall alarm")
        stalled = [a for a in alarms("comms", AlarmState.RAISED) if "stalled" in a.message]
        assert "pmu2" in stalled[0].message
        assert source.aligner.counters["pmu2"].missing >= 1
        # pmu1 goes on without waiting for pmu2
        before = kernel.points.read("pmu1/V1/mag").source_time
        await wait_until(lambda: kernel.points.read("pmu1/V1/mag").source_time > before + 0.3, what="pmu1 continues")
        assert q(kernel, "pmu1/V1/mag").is_good
        assert time.time() - kernel.points.read("pmu1/V1/mag").source_time < 0.5
        missing_counter = kernel.points.read("pmu2/frames_missing")
        await wait_until(lambda: kernel.points.read("pmu2/frames_missing").value >= 1, what="missing counter point")
        del missing_counter
        # resumes: good again, alarm cleared
        rig.servers["pmu2"].stall(False)
        await wait_until(lambda: q(kernel, "pmu2/V1/mag").is_good, what="pmu2 back")
        await wait_until(lambda: [a for a in alarms("comms", AlarmState.CLEARED) if "pmu2" in a.message], what="stall alarm cleared")


async def test_malformed_frames_logged_and_skipped(rig, kernel_for, caplog):
    caplog.set_level(logging.WARNING)
    async with kernel_for(rig) as kernel:
        source = kernel.sources["pdc"]
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good, what="data")
        server = rig.servers["pmu1"]
        good = server.frame(time.time())
        corrupted = bytearray(good)
        corrupted[16] ^= 0x55  # CRC mismatch
        server.send_raw(bytes(corrupted))
        server.send_raw(b"\x00\x01garbage")  # bytes outside frames
        server.send_raw(bytes(codec.encode_config(1, "X", [codec.PhasorChannel("V1")]).convert2bytes()[:10]) + b"\xaa\x31\x00\x05")  # truncated
        await wait_until(lambda: source.aligner.counters["pmu1"].malformed >= 2, what="malformed counted")
        assert "malformed frame" in caplog.text
        before = source.aligner.counters["pmu1"].frames
        await wait_until(lambda: source.aligner.counters["pmu1"].frames > before + 10, what="frames after the malformed ones")
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good, what="still good")


async def test_link_loss_invalid_within_2s_then_reconnect(rig, kernel_for):
    async with kernel_for(rig) as kernel:
        source = kernel.sources["pdc"]
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good and q(kernel, "pmu2/V1/mag").is_good, what="both PMUs")
        value = kernel.points.read("pmu1/V1/mag").value
        await rig.servers["pmu1"].stop()
        took = await wait_until(lambda: q(kernel, "pmu1/V1/mag").validity is Validity.INVALID, timeout=2.0, what="invalid after link loss")
        assert took < 2.0
        assert kernel.points.read("pmu1/V1/mag").value == pytest.approx(value)  # last value kept
        assert q(kernel, "pmu1/V1/mag") == Quality(Validity.INVALID, Detail.OLD_DATA)
        await wait_until(lambda: [a for a in alarms("comms", AlarmState.RAISED) if "pmu1" in a.message], what="link-loss alarm")
        assert q(kernel, "pmu2/V1/mag").is_good
        await rig.servers["pmu1"].start()  # same port
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good, timeout=5.0, what="good after reconnect")
        assert source.link_losses >= 1


async def test_silent_link_loss_detected_by_data_timeout(rig, kernel_for):
    async with kernel_for(rig, stall_timeout_s=0.3, data_timeout_s=0.6) as kernel:
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good, what="data")
        rig.servers["pmu1"].stall()
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").validity is Validity.INVALID, timeout=2.0, what="invalid")
        rig.servers["pmu1"].stall(False)
        await wait_until(lambda: q(kernel, "pmu1/V1/mag").is_good, timeout=5.0, what="good again")


async def test_frequency_and_rocof_events(rig, kernel_for):
    async with kernel_for(rig) as kernel:
        await wait_until(lambda: q(kernel, "pmu1/freq_hz").is_good, what="data")
        server = rig.servers["pmu1"]
        server.set_frequency(offset_hz=0.3)
        await wait_until(lambda: [a for a in alarms("frequency", AlarmState.RAISED) if "pmu1" in a.message], what="frequency alarm")
        alarm = alarms("frequency", AlarmState.RAISED)[0]
        assert str(alarm.point) == "pmu1/freq_hz" and "frequency event, 50.3" in alarm.message.replace("50.29", "50.3")
        assert not [a for a in alarms("frequency") if "pmu2" in a.message]
        server.set_frequency(offset_hz=0.0)
        await wait_until(lambda: alarms("frequency", AlarmState.CLEARED), what="frequency alarm cleared")
        server.set_frequency(rocof_hz_s=-0.8)  # ramps down at 0.8 Hz/s
        await wait_until(lambda: alarms("rocof", AlarmState.RAISED), what="ROCOF alarm")
        assert kernel.points.read("pmu1/rocof_hz_s").value == pytest.approx(-0.8, abs=0.05)


async def test_short_violation_within_on_delay_raises_nothing(rig, kernel_for):
    async with kernel_for(rig, event_on_delay_s=0.5) as kernel:
        await wait_until(lambda: q(kernel, "pmu1/freq_hz").is_good, what="data")
        rig.servers["pmu1"].set_frequency(offset_hz=0.5)
        await wait_until(lambda: kernel.points.read("pmu1/freq_hz").value > 50.4, what="excursion seen")
        rig.servers["pmu1"].set_frequency(offset_hz=0.0)
        await wait_until(lambda: kernel.points.read("pmu1/freq_hz").value < 50.1, what="back")
        t0 = time.monotonic()
        await wait_until(lambda: time.monotonic() - t0 > 0.6)
        assert not alarms("frequency")
