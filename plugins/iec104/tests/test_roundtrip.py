"""Source ↔ simulator server over real loopback sockets: values, commands, link loss."""

from __future__ import annotations

import time

import pytest

from dms_hookspecs import Alarm, AlarmState, Command, CommandStatus, Detail, Quality, QualitySource, Validity
from dms_iec104 import Iec104Server
from dms_iec104.mapping import LINK_LOST_BITS
from dms_iec104.testing import wait_until

NAMES = [f"rtu/{n}" for n in ("U", "P", "Alarm", "CB1", "CB2", "Tap", "SP")]


def good(kernel, name):
    return kernel.points.read(name).quality.is_good


async def test_values_quality_and_timestamps_arrive(rig, kernel_for):
    kernel = kernel_for(rig)
    async with kernel:
        # general interrogation after connect delivers the twin's current values
        await wait_until(lambda: all(good(kernel, n) for n in NAMES), what="GI of both common addresses")
        assert kernel.points.read("rtu/U").value == pytest.approx(20.1)
        assert kernel.points.read("rtu/P").value == pytest.approx(1.25)  # scale 0.001 both ways
        assert kernel.points.read("rtu/CB1").value == 2
        assert kernel.points.read("rtu/Tap").value == 3

        # spontaneous update with source timestamp (CP56Time2a has ms resolution)
        stamp = time.time() - 3600.25
        rig.twin.set("rtu/U", 20.7, source_time=stamp)
        await wait_until(lambda: kernel.points.read("rtu/U").value == pytest.approx(20.7), what="spontaneous value")
        m = kernel.points.read("rtu/U")
        assert m.quality.is_good
        assert m.source_time == pytest.approx(stamp, abs=0.002)

        # quality descriptor mapping: NT → questionable + old-data; IV; SB; BL; OV
        questionable = Quality(Validity.QUESTIONABLE, Detail.OLD_DATA).to_bits()
        rig.twin.set("rtu/P", 2.0, questionable)
        await wait_until(lambda: kernel.points.read("rtu/P").value == pytest.approx(2.0), what="P update")
        assert kernel.points.read("rtu/P").quality == Quality(Validity.QUESTIONABLE, Detail.OLD_DATA)

        substituted = Quality(Validity.INVALID, source=QualitySource.SUBSTITUTED, operator_blocked=True).to_bits()
        rig.twin.set("rtu/Tap", 5, substituted)
        await wait_until(lambda: kernel.points.read("rtu/Tap").value == 5, what="Tap update")
        assert kernel.points.read("rtu/Tap").quality == Quality(Validity.INVALID, source=QualitySource.SUBSTITUTED, operator_blocked=True)

        rig.twin.set("rtu/U", 1e6, Quality(Validity.QUESTIONABLE, Detail.OVERFLOW).to_bits())
        await wait_until(lambda: kernel.points.read("rtu/U").value == 1e6, what="overflow update")
        assert kernel.points.read("rtu/U").quality == Quality(Validity.QUESTIONABLE, Detail.OVERFLOW)

        # single points have no overflow bit (SIQ: IV NT SB BL): blocked survives, overflow is dropped
        rig.twin.set("rtu/Alarm", 1, Quality(Validity.QUESTIONABLE, Detail.OVERFLOW, operator_blocked=True).to_bits())
        await wait_until(lambda: kernel.points.read("rtu/Alarm").value == 1, what="binary update")
        assert kernel.points.read("rtu/Alarm").quality == Quality(operator_blocked=True)

        # a burst of changes in one notification arrives complete (transmit_batch → one ASDU)
        rig.twin.set_many({"rtu/U": 21.0, "rtu/P": 3.0, "rtu/SP": 11.5, "rtu/CB2": 1})
        await wait_until(
            lambda: [kernel.points.read(n).value for n in ("rtu/U", "rtu/P", "rtu/SP", "rtu/CB2")] == pytest.approx([21.0, 3.0, 11.5, 1]),
            what="batch",
        )


async def test_commands_round_trip_with_direct_and_select_before_operate(rig, kernel_for):
    kernel = kernel_for(rig)
    async with kernel:
        await wait_until(lambda: all(good(kernel, n) for n in NAMES), what="connected")

        # direct execute (C_DC_TA_1, ACT_CON)
        result = await kernel.execute(Command("rtu/CB1", 1, originator="operator:test"))
        assert result.status is CommandStatus.SUCCEEDED, result.reason
        assert "ACT_CON" in result.reason
        assert rig.twin.commands[-1] == ("rtu/CB1", 1.0)
        await wait_until(lambda: kernel.points.read("rtu/CB1").value == 1, what="breaker open reported back")

        # select-before-operate from the point map: select ACT_CON, execute ACT_CON + ACT_TERM
        result = await kernel.execute(Command("rtu/CB2", 1, originator="operator:test"))
        assert result.status is CommandStatus.SUCCEEDED, result.reason
        assert "ACT_TERM" in result.reason
        assert rig.twin.commands[-1] == ("rtu/CB2", 1.0)

        # regulating step raise (C_RC_TA_1): the server moves the twin's tap position by one
        result = await kernel.execute(Command("rtu/Tap", 1, originator="operator:test"))
        assert result.ok, result.reason
        assert rig.twin.read("rtu/Tap")[0] == 4
        result = await kernel.execute(Command("rtu/Tap", -2, originator="operator:test"))
        assert result.ok, result.reason
        assert rig.twin.read("rtu/Tap")[0] == 2
        await wait_until(lambda: kernel.points.read("rtu/Tap").value == 2, what="tap position reported back")

        # set-point (C_SE_TC_1), select-before-operate per map
        result = await kernel.execute(Command("rtu/SP", 12.5, originator="operator:test"))
        assert result.ok, result.reason
        assert rig.twin.commands[-1] == ("rtu/SP", 12.5)
        await wait_until(lambda: kernel.points.read("rtu/SP").value == pytest.approx(12.5), what="set-point feedback")

        # refused by the outstation → negative ACT_CON → FAILED (direct and SBO)
        rig.twin.refuse["rtu/CB1"] = "interlocked in the field"
        result = await kernel.execute(Command("rtu/CB1", 2, originator="operator:test"))
        assert result.status is CommandStatus.FAILED, result.reason
        assert "negative ACT_CON" in result.reason
        rig.twin.refuse["rtu/CB2"] = "local mode"
        result = await kernel.execute(Command("rtu/CB2", 2, originator="operator:test"))
        assert result.status is CommandStatus.FAILED, result.reason

        # invalid values never reach the wire
        result = await kernel.execute(Command("rtu/CB1", 7, originator="operator:test"))
        assert result.status is CommandStatus.REJECTED
        assert "rtu/U" not in {name for name, _ in rig.twin.commands}
        result = await kernel.execute(Command("rtu/U", 1, originator="operator:test"))
        assert result.status is CommandStatus.REJECTED  # not controllable

        # no confirmation in time → TIMEOUT (the twin takes longer than the source waits)
        del rig.twin.refuse["rtu/CB1"]
        rig.twin.operate_delay_s = 2.5
        result = await kernel.execute(Command("rtu/CB1", 2, originator="operator:test", timeout_s=5))
        assert result.status is CommandStatus.TIMEOUT, result.reason
        rig.twin.operate_delay_s = 0.0


async def test_link_loss_marks_points_invalid_and_reconnect_restores(rig, kernel_for):
    kernel = kernel_for(rig)
    names = NAMES
    async with kernel:
        await wait_until(lambda: all(good(kernel, n) for n in names), what="all points good")
        await rig.server.stop()
        took = await wait_until(
            lambda: all(int(kernel.points.read(n).quality.to_bits()) == LINK_LOST_BITS for n in names), timeout=2.0, what="all invalid"
        )
        assert took < 2.0
        assert kernel.points.read("rtu/U").value == pytest.approx(20.1)  # last value kept, flagged old
        assert kernel.points.read("rtu/U").quality == Quality(Validity.INVALID, Detail.OLD_DATA)

        # commands fail fast while the link is down
        result = await kernel.execute(Command("rtu/CB1", 1, originator="operator:test"))
        assert result.status is CommandStatus.FAILED and "down" in result.reason

        rig.twin.set("rtu/U", 19.9)  # changed while disconnected: GI after reconnect brings it
        rig.server = Iec104Server("sim", rig.server_settings, rig.twin)
        await rig.server.start()
        await wait_until(lambda: all(good(kernel, n) for n in names), timeout=5.0, what="good again after reconnect")
        assert kernel.points.read("rtu/U").value == pytest.approx(19.9)

        alarms = [e for e in kernel.sinks["log"].events if isinstance(e, Alarm) and e.category == "comms"]
        assert [a.state for a in alarms][:2] == [AlarmState.RAISED, AlarmState.CLEARED]
        source = kernel.sources["rtu"]
        assert source.counters["link_losses"] == 1 and source.counters["connects"] == 2
