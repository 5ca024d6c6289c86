"""Wire schema v1: every event type round-trips; unknown types, versions and objects are refused."""

from __future__ import annotations

import zlib

import msgpack
import numpy as np
import pytest

import dms_nats.schema

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
    NamesTable,
    SchemaError,
    Subjects,
    UnknownNamesTable,
    decode_command_request,
    decode_event,
    decode_ingest,
    decode_names_table,
    encode_command_request,
    encode_event,
    encode_ingest,
    encode_packed_batch,
    names_table_entries,
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
    assert subjects.names_bucket == "LS_A_NAMES"
    assert token("a>b*c") == "a_b_c"
    assert points_digest(["a", "b"]) != points_digest(["b", "a"])


# -- packed measurement batches and names tables -------------------------------------------

NAMES = ["S1/U0", "S1/U1", "Süd/P", "odd\nname", "S2/I0"]


def _packed_batch(table, points=(3, 1, 4)):
    points = np.array(points)
    return MeasurementBatch("rtu", points, np.array([1.5, np.nan, -2.0]), np.array([0, 65, 0x1FFF], np.uint16),
                            np.array([1.0, 2.0, 3.0]), 7.0, table.names[points])


def test_packed_measurement_batch_round_trip():
    table = NamesTable.of(NAMES)
    batch = _packed_batch(table)
    data = encode_packed_batch(batch, table)
    assert data is not None
    decoded = decode_event(data, {table.digest: table})
    assert type(decoded) is MeasurementBatch and decoded.source == "rtu" and decoded.receive_time == 7.0
    assert decoded.points.dtype == np.int64 and decoded.quality.dtype == np.uint16
    np.testing.assert_array_equal(decoded.points, [3, 1, 4])
    np.testing.assert_array_equal(decoded.values, batch.values)  # NaN survives
    np.testing.assert_array_equal(decoded.quality, [0, 65, 0x1FFF])
    np.testing.assert_array_equal(decoded.source_time, [1.0, 2.0, 3.0])
    assert list(decoded.names) == ["odd\nname", "S1/U1", "S2/I0"]
    # the same batch as a generic event decodes to the same content
    generic = decode_event(encode_event(batch))
    assert list(generic.names) == list(decoded.names)
    np.testing.assert_array_equal(generic.quality, decoded.quality)


def test_packed_batches_are_smaller_than_generic_ones():
    names = [f"substation{i // 100:03d}/feeder{i % 100:02d}/P" for i in range(10_000)]
    table = NamesTable.of(names)
    points = np.arange(0, 10_000, 2)
    batch = MeasurementBatch("rtu", points, np.ones(points.size), np.zeros(points.size, np.uint16), np.ones(points.size), 1.0, table.names[points])
    packed = encode_packed_batch(batch, table)
    assert len(packed) < points.size * (4 + 8 + 2 + 8) + 200 < len(encode_event(batch)) / 2


def test_packed_batch_without_its_table_is_refused():
    table = NamesTable.of(NAMES)
    data = encode_packed_batch(_packed_batch(table), table)
    with pytest.raises(UnknownNamesTable) as raised:
        decode_event(data)
    assert raised.value.digest == table.digest and isinstance(raised.value, SchemaError)
    other = NamesTable.of(NAMES[:2])
    with pytest.raises(UnknownNamesTable):
        decode_event(data, {other.digest: other})
    # a table of the same digest but too short (forged message): refused, not an IndexError
    forged = msgpack.packb({**msgpack.unpackb(data), "table": other.digest})
    with pytest.raises(SchemaError, match="beyond names table"):
        decode_event(forged, {other.digest: other})
    lengths = msgpack.packb({**msgpack.unpackb(data), "values": b"\0" * 8})
    with pytest.raises(SchemaError, match="differ in length"):
        decode_event(lengths, {table.digest: table})


def test_batches_that_do_not_fit_the_table_stay_generic():
    table = NamesTable.of(NAMES)
    batch = _packed_batch(table)
    wrong_names = MeasurementBatch("rtu", batch.points, batch.values, batch.quality, batch.source_time, 7.0, ("S1/U0", "S1/U1", "S2/I0"))
    no_names = MeasurementBatch("rtu", batch.points, batch.values, batch.quality, batch.source_time, 7.0)
    beyond = MeasurementBatch("rtu", np.array([9]), np.ones(1), np.zeros(1, np.uint16), np.ones(1), 7.0, ("x",))
    wide_quality = MeasurementBatch("rtu", np.array([0]), np.ones(1), np.array([1 << 17]), np.ones(1), 7.0, ("S1/U0",))
    for unfit in (wrong_names, no_names, beyond, wide_quality):
        assert encode_packed_batch(unfit, table) is None
    plain_ints = MeasurementBatch("rtu", [0, 2], [1.0, 2.0], [0, 3], [1.0, 2.0], 7.0, ["S1/U0", "Süd/P"])
    decoded = decode_event(encode_packed_batch(plain_ints, table), {table.digest: table})
    assert list(decoded.names) == ["S1/U0", "Süd/P"]


def test_names_table_entries_round_trip_in_chunks(monkeypatch):
    monkeypatch.setattr(dms_nats.schema, "NAMES_CHUNK_BYTES", 64)
    names = [f"Umspannwerk Süd {i}/U" for i in range(200)] + ["a\nb"]
    table = NamesTable.of(names)
    entries = names_table_entries(table)
    assert len(entries) > 3
    *chunks, (key, header) = entries
    assert key == table.digest and [k for k, _ in chunks] == [f"{table.digest}.{n}" for n in range(len(chunks))]
    decoded = decode_names_table(table.digest, header, [value for _, value in chunks])
    assert list(decoded.names) == names and decoded.digest == table.digest
    assert NamesTable.of(names[::-1]).digest != table.digest


def test_names_tables_are_checked_against_their_digest_and_size():
    table = NamesTable.of(NAMES)
    *chunks, (_, header) = names_table_entries(table)
    values = [value for _, value in chunks]
    other = NamesTable.of(NAMES[:-1])
    *other_chunks, (_, other_header) = names_table_entries(other)
    with pytest.raises(SchemaError, match="does not match its digest"):
        decode_names_table(table.digest, other_header, [value for _, value in other_chunks])
    with pytest.raises(SchemaError, match="chunks"):
        decode_names_table(table.digest, header, values + values)
    with pytest.raises(SchemaError, match="not zlib data"):
        decode_names_table(table.digest, header, [b"garbage"])
    with pytest.raises(SchemaError, match="malformed header"):
        decode_names_table(table.digest, b"\xc1", values)
    with pytest.raises(SchemaError, match="schema version 2"):
        decode_names_table(table.digest, msgpack.packb({"v": 2, "count": 1, "chunks": 1, "bytes": 1}), values)
    with pytest.raises(SchemaError, match="refused"):
        decode_names_table(table.digest, msgpack.packb({"v": 1, "count": 1, "chunks": 1, "bytes": 1 << 40}), values)
    # a compression bomb announced as small is inflated only as far as announced
    bomb = zlib.compress(b"\0" * (64 << 20))
    small = msgpack.packb({"v": 1, "count": 5, "chunks": 1, "bytes": 100})
    with pytest.raises(SchemaError, match="does not match its digest"):
        decode_names_table(table.digest, small, [bomb])
