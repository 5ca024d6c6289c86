"""DLMS source against the simulated meter over real loopback TCP, inside a real kernel."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

import plugins_for_tests as p
from dms_dlms.testing import wait_for
from dms_hookspecs import Alarm, AlarmState, Command, CommandStatus, Detail, MeasurementBatch, Validity


def q(kernel, point):
    return kernel.points.read(point).quality


async def test_values_arrive_with_scaler_quality_and_meter_clock(rig, kernel_for):
    kernel = kernel_for(rig)
    async with kernel:
        await wait_for(lambda: kernel.points.read("M1/P").value == pytest.approx(1500.5))
        energy = kernel.points.read("M1/E_imp")
        assert energy.value == pytest.approx(12345.67)
        assert energy.quality.is_good
        # the meter clock runs an hour behind: the source time is the meter's, not ours
        assert energy.source_time == pytest.approx(time.time() - 3600, abs=5)
        assert kernel.points.read("M1/U_L1").value == pytest.approx(230.1)
        assert kernel.points.read("M1/I_L1").value == pytest.approx(6.52)
        assert kernel.points.read("M1/Breaker").value == 2  # connected = closed
        rig.twin.set("M1/P", 2222.22)
        await wait_for(lambda: kernel.points.read("M1/P").value == pytest.approx(2222.22))


async def test_invalid_twin_value_is_invalid_failure_others_unaffected(rig, kernel_for):
    kernel = kernel_for(rig)
    async with kernel:
        await wait_for(lambda: q(kernel, "M1/U_L1").is_good)
        rig.twin.invalidate(["M1/U_L1"])
        await wait_for(lambda: q(kernel, "M1/U_L1").validity is Validity.INVALID)
        assert Detail.FAILURE in q(kernel, "M1/U_L1").detail
        assert q(kernel, "M1/I_L1").is_good and q(kernel, "M1/P").is_good
        rig.twin.set("M1/U_L1", 231.0)
        await wait_for(lambda: q(kernel, "M1/U_L1").is_good and kernel.points.read("M1/U_L1").value == pytest.approx(231.0))


async def test_load_profile_rows_published_with_their_own_timestamps(rig, kernel_for):
    now = rig.server.clock()
    rig.twin.set_many({"M1/P": 100.0, "M1/E_imp": 1000.0})
    rig.server.capture_profile(at=now + 1)
    rig.twin.set_many({"M1/P": 200.0, "M1/E_imp": 1050.0})
    rig.server.capture_profile(at=now + 2)
    kernel = kernel_for(rig)
    async with kernel:
        sink = p.ListSink.instances["events"]
        await wait_for(lambda: kernel.points.read("M1/LP_P").value == 200.0)
        last = kernel.points.read("M1/LP_E_imp")
        assert last.value == pytest.approx(1050.0)
        assert last.source_time == pytest.approx(now + 2, abs=0.02)
        # later rows arrive incrementally (read by range from the last row)
        rig.twin.set("M1/P", 300.0)
        rig.server.capture_profile(at=now + 3)
        await wait_for(lambda: kernel.points.read("M1/LP_P").value == 300.0)
        await asyncio.sleep(0.5)
        rows = [
            (m.value, m.source_time)
            for batch in sink.of_type(MeasurementBatch)
            for m in batch.measurements()
            if m.point.name == "M1/LP_P"
        ]
        times = [stamp for _, stamp in rows]
        assert times == sorted(times)
        assert [value for value, _ in rows][-3:] == [100.0, 200.0, 300.0]
        assert len([t for t in times if t >= now + 1 - 0.01]) == 3  # each row once


async def test_disconnect_control_roundtrip_and_refusal(rig, kernel_for):
    kernel = kernel_for(rig)
    async with kernel:
        await wait_for(lambda: kernel.points.read("M1/Breaker").value == 2)
        result = await kernel.execute(Command("M1/Breaker", 1, originator="test"))
        assert result.status is CommandStatus.SUCCEEDED, result.reason
        assert rig.twin.commands == [("M1/Breaker", 1.0)]
        await wait_for(lambda: kernel.points.read("M1/Breaker").value == 1)
        rig.twin.refuse["M1/Breaker"] = "customer has a medical device"
        result = await kernel.execute(Command("M1/Breaker", 2, originator="test"))
        assert result.status is CommandStatus.FAILED
        assert rig.twin.commands == [("M1/Breaker", 1.0)]
        del rig.twin.refuse["M1/Breaker"]
        result = await kernel.execute(Command("M1/Breaker", 2, originator="test"))
        assert result.ok, result.reason
        await wait_for(lambda: kernel.points.read("M1/Breaker").value == 2)
        result = await kernel.execute(Command("M1/Breaker", 7, originator="test"))
        assert result.status is CommandStatus.REJECTED


async def test_link_loss_invalidates_within_2s_and_recovers(rig, kernel_for):
    kernel = kernel_for(rig)
    async with kernel:
        await wait_for(lambda: all(q(kernel, pt).is_good for pt in ("M1/P", "M1/E_imp", "M1/Breaker")))
        await rig.server.stop()
        took = await wait_for(
            lambda: all(q(kernel, e.point).validity is Validity.INVALID for e in kernel.sources["meter1"].entries),
            timeout=2.0,
        )
        assert took < 2.0
        assert Detail.OLD_DATA in q(kernel, "M1/P").detail
        sink = p.ListSink.instances["events"]
        await wait_for(lambda: any(a.category == "comms" for a in sink.of_type(Alarm)))
        await rig.server.start()  # same port
        await wait_for(lambda: q(kernel, "M1/P").is_good and q(kernel, "M1/Breaker").is_good, timeout=3.0)
        await wait_for(lambda: any(a.category == "comms" and a.state is AlarmState.CLEARED for a in sink.of_type(Alarm)))


async def test_power_failure_goes_silent_then_outage_alarm_from_event_log(rig, kernel_for):
    kernel = kernel_for(rig)
    async with kernel:
        sink = p.ListSink.instances["events"]
        await wait_for(lambda: q(kernel, "M1/P").is_good)
        await asyncio.sleep(0.3)  # first event log read sets the starting point
        rig.server.inject_power_failure()
        await wait_for(lambda: q(kernel, "M1/P").validity is Validity.INVALID, timeout=2.0)
        await asyncio.sleep(0.2)
        rig.server.restore_power()
        await wait_for(lambda: q(kernel, "M1/P").is_good, timeout=3.0)
        await wait_for(lambda: len([a for a in sink.of_type(Alarm) if a.category == "outage"]) >= 2, timeout=3.0)
        outage = [a for a in sink.of_type(Alarm) if a.category == "outage"]
        assert outage[0].state is AlarmState.RAISED and "power failure" in outage[0].message
        assert outage[1].state is AlarmState.CLEARED
        assert outage[0].time <= outage[1].time
        assert [code for _, code in rig.server.events] == [1, 2]


async def test_twin_invalidating_every_point_is_a_meter_outage(rig, kernel_for):
    kernel = kernel_for(rig)
    async with kernel:
        await wait_for(lambda: q(kernel, "M1/P").is_good)
        rig.twin.invalidate([e.point for e in rig.server.entries])
        assert not rig.server.powered
        await wait_for(lambda: q(kernel, "M1/E_imp").validity is Validity.INVALID, timeout=2.0)
        rig.twin.set_many({pt: rig.twin.read(pt)[0] for pt in rig.server.points})
        assert rig.server.powered
        await wait_for(lambda: q(kernel, "M1/E_imp").is_good, timeout=3.0)


async def test_low_level_security_password_never_logged(tmp_path, kernel_for, caplog):
    from dms_dlms.testing import MeterRig

    rig = MeterRig(tmp_path, password="s3cr3t-Pw")
    await rig.server.start()
    try:
        caplog.set_level(logging.DEBUG)
        kernel = kernel_for(rig, password="s3cr3t-Pw")
        async with kernel:
            await wait_for(lambda: q(kernel, "M1/P").is_good)
        bad = kernel_for(rig, password="wrong-Pw-123")
        async with bad:
            sink = p.ListSink.instances["events"]
            await wait_for(lambda: any(a.category == "comms" for a in sink.of_type(Alarm)))
            assert bad.points.read("M1/P").quality.validity is Validity.INVALID
        alarms = " ".join(a.message for a in sink.of_type(Alarm))
        assert "s3cr3t" not in caplog.text and "wrong-Pw" not in caplog.text
        assert "s3cr3t" not in alarms and "wrong-Pw" not in alarms
    finally:
        await rig.server.stop()


async def test_command_without_confirmation_in_time_is_timeout_and_session_recovers(rig, kernel_for):
    kernel = kernel_for(rig)  # request_timeout_s 0.5
    async with kernel:
        await wait_for(lambda: q(kernel, "M1/Breaker").is_good)
        rig.twin.operate_delay_s = 1.0
        result = await kernel.execute(Command("M1/Breaker", 1, originator="test", timeout_s=5.0))
        assert result.status is CommandStatus.TIMEOUT, result.reason
        rig.twin.operate_delay_s = 0.0
        # the association was dropped (state unknown); the source reconnects and reads the outcome
        await wait_for(lambda: q(kernel, "M1/Breaker").is_good and kernel.points.read("M1/Breaker").value == 1, timeout=4.0)
