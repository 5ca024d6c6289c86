"""The plugin in a kernel: incidents from real Alarm events on the bus, audit trail, settings."""

from __future__ import annotations

import importlib.metadata

import pytest

import dms_workorders.plugin
from dms_hookspecs import Alarm, AlarmPriority, AlarmState, AuditEntry, PointId, Sink, TopologyChanged, hookimpl
from dms_kernel.errors import ConfigError, PluginError
from dms_workorders import OrderState, Workorders, service_for

from .grid import SITE_LAT, SITE_LON, feeder


class AuditRecorder(Sink):
    accepts = (AuditEntry,)

    def __init__(self, name, settings):
        super().__init__(name, settings)
        self.entries: list[AuditEntry] = []

    async def write(self, events):
        self.entries.extend(events)


class RecorderPlugin:
    @hookimpl
    def dms_add_sink_types(self, registry):
        registry.add("audit_recorder", AuditRecorder)


def deployment(url: str, extra: str = "") -> str:
    return f"""
        [deployment]
        name = "workorders test"

        [settings.workorders]
        url = "{url}"
        auto_assign = true
        skills_by_category = {{ protection = ["mv"] }}
        crews = [
            {{ name = "far", skills = ["mv"], lat = {SITE_LAT + 0.1}, lon = {SITE_LON} }},
            {{ name = "near", skills = ["mv"], lat = {SITE_LAT + 0.01}, lon = {SITE_LON} }},
            {{ name = "nearest-lv", skills = ["lv"], lat = {SITE_LAT}, lon = {SITE_LON} }},
        ]
        {extra}

        [[sinks]]
        name = "audit"
        type = "audit_recorder"
    """


async def test_protection_trip_alarm_opens_an_incident_with_an_assigned_order(make_kernel, tmp_path, wait_until):
    url = f"sqlite:///{tmp_path / 'wo.db'}"
    kernel = make_kernel(("workorders", dms_workorders.plugin), ("recorder", RecorderPlugin()), deployment=deployment(url))
    kernel.model = feeder()
    trip = Alarm("Breaker Q1 tripped (overcurrent, feeder 3)", AlarmPriority.HIGH, source="alarms", point=PointId("Q1.pos"), category="protection")
    limit = Alarm("voltage 1.12 pu at node n2", AlarmPriority.HIGH, source="limits", category="limit")
    critical = Alarm("transformer T1 loaded 135 %", AlarmPriority.CRITICAL, source="limits", category="limit")
    async with kernel:
        service = service_for(kernel)
        kernel.emit(trip)
        kernel.emit(limit)  # high, not protection: no incident
        kernel.emit(critical)  # critical: an incident (no location, so no automatic assignment)
        kernel.emit(Alarm(trip.message, trip.priority, source="alarms", point=trip.point, state=AlarmState.ACKNOWLEDGED, category="protection", id=trip.id))
        await wait_until(lambda: len(service.incidents()) == 2 and len(service.orders()) == 2, what="incidents from alarms")
        kernel.emit(Alarm(trip.message, trip.priority, source="alarms", point=trip.point, state=AlarmState.CLEARED, category="protection", id=trip.id))
        await wait_until(lambda: len(service.notes()) == 2, what="note of the cleared alarm")

        incident, other = service.incidents()
        assert (incident.source, incident.alarm_id, incident.element, incident.priority) == ("alarm", trip.id, "Q1.pos", 2)
        assert (incident.lat, incident.lon) == (SITE_LAT, SITE_LON)  # from the breaker's CIM Location
        assert incident.created == trip.time and incident.created_by == "alarm:alarms"
        [order] = service.orders(incident=incident)
        assert (order.state, order.crew, order.skills) == (OrderState.ASSIGNED, "near", frozenset({"mv"}))
        assert other.alarm_id == critical.id and service.orders(incident=other)[0].state is OrderState.NEW
        notes = [n.text for n in service.notes()]
        assert notes[0].startswith("automatic assignment failed: work order") and "has no location" in notes[0]
        assert notes[1] == f"alarm cleared: {trip.message}"

        # the HMI's path: the operator moves the order on
        service.transition(order, "dispatched", user="anna", note="crew called")

    audit = kernel.sinks["audit"].entries
    mine = [e for e in audit if e.action.startswith("workorders.")]
    assert [e.action for e in mine[:3]] == ["workorders.crew.add"] * 3
    assert {"workorders.incident.create", "workorders.order.create", "workorders.order.transition", "workorders.note"} <= {e.action for e in mine}
    transitions = [e for e in mine if e.action == "workorders.order.transition"]
    assert [(e.actor, e.subject, e.detail) for e in transitions] == [
        ("system", f"work order {order.id}", "new -> assigned; crew near; nearest qualified crew on shift: near, 1.11 km"),
        ("anna", f"work order {order.id}", "assigned -> dispatched; crew near; crew called"),
    ]
    with pytest.raises(LookupError, match="not running"):
        service_for(kernel)

    # persisted: a new service on the same file sees everything
    reopened = Workorders.open(url)
    try:
        assert reopened.order(order.id).state is OrderState.DISPATCHED
        assert [t.actor for t in reopened.history(order)] == ["system", "system", "anna"]
    finally:
        reopened.close()


async def test_outage_from_topology_change_on_the_bus(make_kernel, tmp_path, wait_until):
    kernel = make_kernel(("workorders", dms_workorders.plugin), ("recorder", RecorderPlugin()), deployment=deployment(f"sqlite:///{tmp_path / 'wo.db'}"))
    kernel.model = feeder()
    async with kernel:
        service = service_for(kernel)
        kernel.emit(TopologyChanged(deenergised=("n1", "n2"), switches=("q1",), islands=2, time=1000.0))
        await wait_until(lambda: service.outages(), what="outage record")
        kernel.emit(TopologyChanged(energised=("n1", "n2"), switches=("q1",), islands=1, time=1900.0))
        await wait_until(lambda: not service.outages(ongoing=True), what="restoration")
    [outage] = service.outages()
    assert (outage.customers, outage.started, outage.restored) == (66, 1000.0, 1900.0)  # 40 + 1 + 25 customers


async def test_invalid_crew_settings_stop_the_start_naming_plugin_and_key(make_kernel, tmp_path):
    bad = deployment(f"sqlite:///{tmp_path / 'wo.db'}").replace('name = "far", ', 'name = "far", shift = "day", ')
    kernel = make_kernel(("workorders", dms_workorders.plugin), ("recorder", RecorderPlugin()), deployment=bad)
    with pytest.raises(PluginError, match=r"plugin 'workorders' failed in dms_startup: ValueError: \[settings.workorders\] crews\[1\]: unknown key 'shift'"):
        async with kernel:
            pass


async def test_unknown_setting_is_a_config_error(make_kernel, tmp_path):
    kernel = make_kernel(("workorders", dms_workorders.plugin), deployment=deployment("sqlite://", "alarm_prio = 'high'").split("[[sinks]]")[0])
    with pytest.raises(ConfigError, match=r"\[settings.workorders\] key 'alarm_prio': unknown key"):
        await kernel.prepare()


async def test_installed_entry_point_is_loaded_by_name(make_kernel, tmp_path):
    [entry_point] = [e for e in importlib.metadata.entry_points(group="dms.plugins") if e.name == "workorders"]
    assert entry_point.dist.name == "dms-workorders" and entry_point.value == "dms_workorders.plugin"
    kernel = make_kernel(entry_points=True, deployment=f"""
        [deployment]
        name = "t"
        [plugins]
        enable = ["workorders"]
        [settings.workorders]
        url = "sqlite:///{tmp_path / 'wo.db'}"
    """)
    async with kernel:
        assert isinstance(service_for(kernel), Workorders)
    assert "workorders" in kernel.host.plugin_names()
    assert kernel.host.distribution_of("workorders") == "dms-workorders 0.1.0"
