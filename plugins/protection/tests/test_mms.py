"""Settings to the simulator's IED over IEC 61850 MMS (loopback, ephemeral port): setting groups
(select edit group, write SE, confirm, activate), read back, mismatch alarm."""

from __future__ import annotations

import asyncio
import socket

import pytest

from dms_hookspecs import Alarm, AuditEntry, PointKind, PointSpec
from dms_iec61850.server import Iec61850Server
from dms_protection import plugin as protection_plugin
from dms_protection.mms import distribute, read_group, setting_values
from dms_protection.settings import DeviceSettings, Instantaneous, Overcurrent
from dms_simulator import PointMapEntry, StaticTwin, write_point_map

from .chains import relay_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def ied(tmp_path):
    point_map = tmp_path / "points.csv"
    write_point_map(point_map, [PointMapEntry("F1/P", "IED1LD0/MMXU1.TotW.mag.f", PointKind.ANALOG, 1.0)])
    twin = StaticTwin([PointSpec("F1/P")], {"F1/P": 1.5})
    port = free_port()
    server = Iec61850Server("ied", {"points_file": str(point_map), "port": port, "setting_groups": 2,
                                    "protection_lns": ["IED1LD0/PTOC1", "IED1LD0/PIOC1"]}, twin)
    await server.start()
    try:
        yield server, port
    finally:
        await server.stop()


async def test_setting_groups_round_trip(ied):
    server, port = ied
    group1 = relay_settings("CB1")  # ied IED1LD0: PTOC1 + PIOC1
    group2 = DeviceSettings("CB1", "relay", overcurrent=[Overcurrent(450.0, "ieee_very_inverse", 2.5, 0.0)],
                            instantaneous=[Instantaneous(9000.0, 0.08)], ied="IED1LD0")
    result = await asyncio.to_thread(distribute, group2, "127.0.0.1", port, group=2, activate=True)
    assert result.ok, result.mismatches
    assert result.active_group == 2
    assert result.read_back["PTOC1.StrVal.setMag.f"] == pytest.approx(450.0)
    assert result.read_back["PTOC1.TmACrv.setCharact"] == 2  # IEEE very inverse
    assert result.read_back["PIOC1.OpDlTmms.setVal"] == 80
    # group 1 edited without activating it: group 2 stays active, both groups hold their values
    result = await asyncio.to_thread(distribute, group1, "127.0.0.1", port, group=1, activate=False)
    assert result.ok and result.active_group == 2
    assert server.setting_groups.active_group("IED1LD0") == 2
    kinds = {ref: kind for ref, (kind, _) in setting_values(group2).items()}
    again = await asyncio.to_thread(read_group, "127.0.0.1", port, "IED1LD0", 2, kinds)
    assert again["PTOC1.StrVal.setMag.f"] == pytest.approx(450.0) and again["PTOC1.TmMult.setMag.f"] == pytest.approx(2.5)
    assert server.setting_groups.values["IED1LD0"][1]["IED1LD0/PTOC1.StrVal.setMag.f"] == pytest.approx(600.0)


async def test_service_distributes_and_alarms_a_mismatch(ied, make_kernel, tmp_path):
    server, port = ied
    kernel = make_kernel(("protection", protection_plugin), deployment=f"""
        [deployment]
        name = "mms"
        [settings.protection]
        url = "sqlite:///{tmp_path / 'protection.db'}"
        ieds = {{ IED1LD0 = "127.0.0.1:{port}" }}
    """)
    events: list = []

    async def collect(batch):
        events.extend(batch)

    async with kernel:
        kernel.bus.subscribe("test", collect, (Alarm, AuditEntry), 1000)
        service = protection_plugin.service_for(kernel)
        service.store.save(relay_settings("CB1"), group=1, user="alice", reason="commissioning")
        result = await service.distribute("CB1", user="alice")
        assert result.ok and result.active_group == 1
        assert await service.verify("CB1") == ()
        # someone changes the pickup at the IED's front panel
        server.setting_groups.values["IED1LD0"][1]["IED1LD0/PTOC1.StrVal.setMag.f"] = 555.0
        mismatches = await service.verify("CB1")
        assert mismatches == ("IED1LD0/PTOC1.StrVal.setMag.f: stored 600, IED has 555",)
        await asyncio.sleep(0.1)
    alarms = [e for e in events if isinstance(e, Alarm) and e.category == "protection-settings"]
    assert len(alarms) == 1 and "555" in alarms[0].message
    assert any(isinstance(e, AuditEntry) and e.action == "protection.settings.distribute" for e in events)
