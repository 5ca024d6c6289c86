"""Wire schema v1: every event type round-trips; unknown types, versions and objects are refused."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    AlarmState,
    AuditEntry,
    Command,
    CommandResult,
    CommandStatus,
    ControlAction,
    MeasurementBatch,
    PointId,
    StudyResult,
    TopologyChanged,
)
from dms_nats.schema import (
    IngestBatch,
    SchemaError,
    Subjects,
    decode_command_request,
    decode_event,
    decode_ingest,
    encode_command_request,
    encode_event,
    encode_ingest,
    points_digest,
    token,
)

EVENTS = [
    Alarm("U high", AlarmPriority.HIGH, source="limits", point=PointId("S1/U"), state=AlarmState.ACKNOWLEDGED, category="limit"),
    AuditEntry("alice", "command.operate", "S1/CB1", "ok"),
    TopologyChanged(("n1", "n2"), ("n3",), ("sw1",), 2),
    Command("S1/CB1", 1.0, True, "alice", "maintenance", 5.0),
    CommandResult("abc", CommandStatus.TIMEOUT, "late", step="select"),
    ControlAction(Command("S1/TAP", 1.0), "vvo", "voltage low"),
    StudyResult("power_flow", "pandapower", True, {"losses_mw": 0.25, "nodes": {"node": ("a", "b"), "vm_pu": np.array([1.0, 0.98])}, "iterations": np.int64(3)}),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_events_round_trip(event):
    decoded = decode_event(encode_event(event))
    assert type(decoded) is type(event)
    if isinstance(event, StudyResult):
        assert decoded.data["losses_mw"] == 0.25 and decoded.data["iterations"] == 3
        np.testing.assert_array_equal(decoded.data["nodes"]["vm_pu"], [1.0, 0.98])
        assert decoded.data["nodes"]["node"] == ("a", "b")
    else:
        assert decoded == event


def test_measurement_batch_keeps_arrays_and_dtypes():
    batch = MeasurementBatch("rtu", np.array([3, 4]), np.array([1.5, 2.5]), np.array([0, 65], np.uint16), np.array([1.0, 2.0]), 7.0, ("a", "b"))
    decoded = decode_event(encode_event(batch))
    assert decoded.points.dtype == np.int64 and decoded.quality.dtype == np.uint16
    np.testing.assert_array_equal(decoded.values, [1.5, 2.5])
    assert decoded.names == ("a", "b") and decoded.receive_time == 7.0 and decoded.source == "rtu"


def test_objects_outside_the_schema_are_refused():
    class Secret:
        pass

    with pytest.raises(SchemaError, match="cannot encode Secret"):
        encode_event(StudyResult("x", "y", True, {"obj": Secret()}))
    with pytest.raises(SchemaError, match="not an event type"):
        encode_event(PointId("x"))
    forged = msgpack.packb({"v": 1, "event": msgpack.ExtType(3, msgpack.packb(("os.system", {})))})
    with pytest.raises(SchemaError, match="unknown type 'os.system'"):
        decode_event(forged)


def test_versions_are_checked():
    data = msgpack.packb({"v": 2, "event": None})
    with pytest.raises(SchemaError, match="schema version 2"):
        decode_event(data)
    with pytest.raises(SchemaError, match="not a msgpack message"):
        decode_event(b"\xc1")


def test_ingest_batch_round_trip_is_compact():
    batch = IngestBatch("rtu", np.arange(1000), np.linspace(0, 1, 1000), np.zeros(1000, np.uint16), np.full(1000, 5.0), 6.0, 42, "north", 7, "fe-a", 9)
    data = encode_ingest(batch)
    assert len(data) < 1000 * (4 + 8 + 2 + 8) + 200
    decoded = decode_ingest(data)
    np.testing.assert_array_equal(decoded.offsets, batch.offsets)
    np.testing.assert_array_equal(decoded.values, batch.values)
    assert (decoded.term, decoded.key, decoded.digest, decoded.group) == (7, "fe-a:9", 42, "north")


def test_command_request_round_trip():
    command = Command("S1/CB1", 2.0, originator="bob")
    assert decode_command_request(encode_command_request("select", command)) == ("select", command)
    with pytest.raises(SchemaError, match="malformed command request"):
        decode_command_request(encode_command_request("explode", command))


def test_subjects_and_tokens():
    subjects = Subjects("grid_a", "LS_A")
    assert subjects.meas("S1.rtu 2") == "leitstand.v1.grid_a.meas.S1_rtu_2"
    assert subjects.event("Alarm") == "leitstand.v1.grid_a.events.Alarm"
    assert subjects.cmd("rtu") == "leitstand.v1.grid_a.cmd.rtu"
    assert (subjects.meas_stream, subjects.events_stream, subjects.lease_bucket) == ("LS_A_MEAS", "LS_A_EVENTS", "LS_A_LEASES")
    assert token("a>b*c") == "a_b_c"
    assert points_digest(["a", "b"]) != points_digest(["b", "a"])
