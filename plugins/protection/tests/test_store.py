"""Settings store (SQLite and PostgreSQL), SCL round trip, plots."""

from __future__ import annotations

import pytest

from dms_hookspecs import AuditEntry
from dms_protection.scl import export_scl, import_scl
from dms_protection.service import plot_devices
from dms_protection.settings import DeviceSettings, DistanceZone, Instantaneous, Overcurrent
from dms_protection.store import SettingsStore, UnknownSettings

from .chains import FUSE_100, recloser_settings, relay_settings


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'protection.db'}", None
    return request.getfixturevalue("postgres_schema")


def test_store_versions_groups_and_audit(database):
    url, schema = database
    audit: list = []
    store = SettingsStore(url, schema, emit=audit.append, groups=2)
    try:
        relay = DeviceSettings("CB1", "relay", overcurrent=[Overcurrent(400, "ieee_very_inverse", 2.0)],
                               instantaneous=[Instantaneous(8000, 0.05)], distance=[DistanceZone(1, 4.5, 0.0), DistanceZone(2, 9.0, 0.4)])
        v1 = store.save(relay, group=1, user="alice", reason="commissioning")
        v2 = store.save(DeviceSettings("CB1", "relay", overcurrent=[Overcurrent(450, "ieee_very_inverse", 2.0)]), group=1, user="bob", reason="load growth")
        store.save(DeviceSettings("CB1", "relay", overcurrent=[Overcurrent(300, "iec_very_inverse", 0.2)]), group=2, user="bob", reason="feeder backfeed")
        store.save(recloser_settings("R1"), user="alice", reason="commissioning")
        store.save(DeviceSettings("FU1", "fuse", fuse=FUSE_100), user="alice", reason="commissioning")
        assert (v1.version, v2.version) == (1, 2)
        assert store.get("CB1").settings.overcurrent[0].pickup_a == 450
        assert store.get("CB1", version=1).settings == relay
        assert [(h.group, h.version, h.author, h.reason) for h in store.history("CB1")] == [
            (1, 1, "alice", "commissioning"), (1, 2, "bob", "load growth"), (2, 1, "bob", "feeder backfeed")]
        store.activate("CB1", 2, user="carol", reason="tie closed")
        assert store.active_group("CB1") == 2
        assert store.active()["CB1"].overcurrent[0].curve == "iec_very_inverse"
        assert store.active()["R1"] == recloser_settings("R1")
        assert store.active()["FU1"].fuse == FUSE_100
        with pytest.raises(ValueError, match="reason"):
            store.save(relay, user="x", reason=" ")
        with pytest.raises(ValueError, match="group 3"):
            store.activate("CB1", 3, user="x", reason="y")
        with pytest.raises(UnknownSettings):
            store.get("nope")
    finally:
        store.close()
    assert all(isinstance(e, AuditEntry) for e in audit)
    assert [e.action for e in audit].count("protection.settings.save") == 5
    assert audit[-1].action == "protection.group.activate" and audit[-1].actor == "carol" and "tie closed" in audit[-1].detail
    # persisted: a new store on the same database sees everything
    again = SettingsStore(url, schema)
    try:
        assert again.active_group("CB1") == 2 and len(again.history("CB1")) == 3
    finally:
        again.close()


def test_scl_round_trip():
    group1 = relay_settings("CB1")
    group2 = DeviceSettings("CB1", "relay", overcurrent=[Overcurrent(300.0, "ieee_extremely_inverse", 1.5, 0.0)],
                            instantaneous=[Instantaneous(7500.0, 0.1)], ied="IED1LD0")
    data = export_scl({"CB1": {1: group1, 2: group2}}, {"CB1": 2}, ied="IED1")
    assert b"<SettingControl" in data and b'sGroup="2"' in data and b"PTOC" in data and b"PIOC" in data
    devices, active = import_scl(data)
    assert active == {"CB1": 2}
    assert devices["CB1"][1] == group1
    assert devices["CB1"][2] == group2


def test_plot_png_and_svg(tmp_path, radial, radial_good):
    png = tmp_path / "chain.png"
    data = plot_devices(radial, radial_good, node="F0 B6", path=png)
    assert png.stat().st_size > 5000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_devices(radial, radial_good, devices=["FU1", "R1", "switch_0"], fmt="svg")
    assert b"<svg" in svg[:500] and len(svg) > 5000
