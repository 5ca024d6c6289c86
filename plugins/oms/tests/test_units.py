"""Message parsing, the likelihood model, the plugin's bus inputs (DLMS outage alarms, power-fail points)."""

from __future__ import annotations

import random

import pytest

import dms_oms.plugin
import dms_workorders.plugin
from dms_hookspecs import Alarm, AlarmPriority, AlarmState
from dms_oms import EventKind, InferenceParams, MeterNetwork, infer, manager_for
from dms_oms.mqtt import parse_message
from dms_oms.synthetic import add_devices, add_meters
from dms_pandapower.examples import load_example
from dms_workorders import service_for


def test_parse_message_accepts_objects_lists_epoch_and_iso_times():
    [(meter, kind, when)] = parse_message(b'{"meter": "M1", "event": "last_gasp", "time": "2024-05-15T10:00:00Z"}')
    assert (meter, kind, when) == ("M1", EventKind.LAST_GASP, 1715767200.0)
    events = parse_message('[{"meter": "M2", "event": "power_up", "time": 5}, {"meter": "M3", "event": "power-fail"}]')
    assert events == [("M2", EventKind.POWER_RESTORE, 5.0), ("M3", EventKind.LAST_GASP, None)]
    for bad in (b"\xff", b"[1]", b'{"event": "last_gasp"}', b'{"meter": "M", "event": "reboot"}', b'{"meter": "M", "event": "last_gasp", "time": [1]}'):
        with pytest.raises(ValueError):
            parse_message(bad)


def test_most_downstream_device_wins_a_tie_and_lost_messages_only_weaken_evidence():
    model = load_example("cigre_mv")
    add_devices(model)
    net = MeterNetwork.from_model(model, add_meters(model, random.Random(1), meters=(4, 4)))
    # Line 1-2 fuse and Line 2-3 recloser feed the same consumers (bus 2 has no load): the recloser is nearer them
    assert set(net.extent("line_0_fuse")) == set(net.extent("line_1_recloser"))
    meters = net.device_meters["line_1_recloser"]
    [hypothesis] = infer(net, meters[: int(len(meters) * 0.6)])
    assert hypothesis.device == "line_1_recloser"
    # one last gasp of four on a secondary substation: weak, but positive; an answering poll outweighs it
    station = net.device_meters["load_6_ss"]
    [weak] = infer(net, station[:1])
    assert weak.device == "load_6_ss" and 0 < weak.score < 5
    assert infer(net, station[:1], {station[0]: True}) == []
    with pytest.raises(ValueError):
        InferenceParams(p_report=0.001, false_report_rate=0.01)


async def test_outage_alarms_of_meter_sources_are_last_gasps_and_restores(make_kernel, tmp_path, wait_until):
    """The dlms source raises an ``outage`` alarm per power-down event and clears it on power-up:
    with the source name as meter id they feed the outage manager like head-end messages."""
    model = load_example("cigre_mv")
    add_devices(model)
    meters = add_meters(model, random.Random(5), meters=(2, 2))
    table = ", ".join(f'"{m}" = "{c}"' for m, c in meters.items())
    kernel = make_kernel(
        ("workorders", dms_workorders.plugin), ("oms", dms_oms.plugin),
        deployment=f"""
            [deployment]
            name = "oms alarms"
            [settings.workorders]
            url = "sqlite:///{tmp_path / 'wo.db'}"
            [settings.oms]
            window_s = 0.3
            meters = {{ {table} }}
        """,
    )
    kernel.model = model
    async with kernel:
        oms = manager_for(kernel)
        device = "line_3_sectionaliser"
        out = oms.network.device_meters[device]
        raised = [Alarm(f"meter {m!r}: power failure", AlarmPriority.HIGH, m, category="outage", time=1000.0) for m in out]
        for alarm in raised:
            kernel.emit(alarm)
        await wait_until(lambda: len(oms.outages(ongoing=True)) == 1, what="outage from alarms")
        assert oms.outages()[0].device == device
        await wait_until(lambda: len(service_for(kernel).outages(ongoing=True)) == 1, what="the outage record")
        assert service_for(kernel).outages(ongoing=True)[0].customers == oms.network.customers_of(oms.network.extent(device))
        for alarm in raised:
            kernel.emit(Alarm(alarm.message, alarm.priority, alarm.source, state=AlarmState.CLEARED, category="outage", time=1900.0))
        await wait_until(lambda: not service_for(kernel).outages(ongoing=True), what="restoration from cleared alarms")
        [record] = service_for(kernel).outages()
        assert (record.started, record.restored) == (1000.0, 1900.0)
