"""The NATS bus in the core, against the real server: durable consumers resume where they stopped."""

from __future__ import annotations

import asyncio

import msgpack
import nats
import numpy as np

import dms_nats.plugin
import dms_replay.plugin
from plugins_for_tests import ListSink, test_types
from nats_support import wait_for
from dms_hookspecs import Alarm, AuditEntry, Command, CommandStatus, MeasurementBatch
from dms_nats import NatsBus, RemoteSource
from dms_nats.connection import ensure_streams
from dms_nats.schema import (
    IngestBatch,
    NamesTable,
    Subjects,
    encode_event,
    encode_ingest,
    encode_packed_batch,
    points_digest,
)

SOURCE = '''
[[sources]]
name = "rtu"
type = "random_walk"
group = "north"
settings = { points = 4, controls = 1 }
'''
SINK = '''
[[sinks]]
name = "historian"
type = "list"
'''
NAMES = ["rtu/P0", "rtu/P1", "rtu/P2", "rtu/P3", "rtu/PSP0"]


def _core(make_kernel, nats_env, sinks=SINK, sources=SOURCE):
    return make_kernel(dms_replay.plugin, ("nats", dms_nats.plugin), test_types, deployment=nats_env.toml(sources, sinks))


async def _publisher(nats_env):
    client = await nats.connect(nats_env.url)
    js = client.jetstream()
    subjects = Subjects(nats_env.deployment, nats_env.prefix)
    await ensure_streams(js, subjects, {"retention_s": 600.0, "max_bytes": -1, "replicas": 1, "duplicate_window_s": 120.0})
    return client, js, subjects


def _ingest(seq, term=1, instance="fe-a", digest=None, value=None):
    values = np.full(4, float(seq) if value is None else value)
    return IngestBatch("rtu", np.arange(4), values, np.zeros(4, np.uint16), np.full(4, 1.0e9 + seq), 1.0e9 + seq,
                       points_digest(NAMES) if digest is None else digest, "north", term, instance, seq)


async def test_selected_by_kernel_option_and_grouped_sources_become_remote(make_kernel, nats_env):
    kernel = _core(make_kernel, nats_env)
    await kernel.prepare()
    assert isinstance(kernel.bus, NatsBus)
    assert isinstance(kernel.sources["rtu"], RemoteSource)
    assert kernel.points.owner("rtu/PSP0") == "rtu"


async def test_historian_resumes_from_its_durable_consumer(make_kernel, nats_env):
    kernel = _core(make_kernel, nats_env, sources="")
    async with kernel:
        kernel.emit(AuditEntry("test", "before", "x"))
        await wait_for(lambda: any(getattr(e, "action", "") == "before" for e in ListSink.instances["historian"].events))
    first = ListSink.instances["historian"].events
    # the core is down: a front-end raises alarms meanwhile
    client, js, subjects = await _publisher(nats_env)
    for n in range(5):
        await js.publish(subjects.event("Alarm"), encode_event(Alarm(f"while down {n}", source="fe")))
    await client.close()
    kernel = _core(make_kernel, nats_env, sources="")
    async with kernel:
        await wait_for(lambda: len([e for e in ListSink.instances["historian"].of_type(Alarm)]) >= 5)
    second = ListSink.instances["historian"].events
    assert [a.message for a in ListSink.instances["historian"].of_type(Alarm)] == [f"while down {n}" for n in range(5)]
    # nothing delivered twice: the first run's events are not in the second
    assert not [e for e in second if isinstance(e, AuditEntry) and e.action in ("before", "kernel.start") and e in first]


async def test_core_ingest_resumes_nothing_lost_nothing_twice(make_kernel, nats_env):
    client, js, subjects = await _publisher(nats_env)
    for seq in range(1, 21):
        await js.publish(subjects.meas("rtu"), encode_ingest(_ingest(seq)), headers={"Nats-Msg-Id": f"fe-a:{seq}"})
    kernel = _core(make_kernel, nats_env)
    async with kernel:
        remote = kernel.sources["rtu"]
        await wait_for(lambda: remote.counters["ingested"] == 20)
        assert kernel.points.read("rtu/P2").value == 20.0
        first = list(remote.ingested_keys)
    # core stopped; the front-end keeps publishing (one batch twice: a retry after a lost ack)
    for seq in range(21, 41):
        await js.publish(subjects.meas("rtu"), encode_ingest(_ingest(seq)), headers={"Nats-Msg-Id": f"fe-a:{seq}"})
    await js.publish(subjects.meas("rtu"), encode_ingest(_ingest(30)), headers={"Nats-Msg-Id": "fe-a:30"})
    kernel = _core(make_kernel, nats_env)
    async with kernel:
        remote = kernel.sources["rtu"]
        await wait_for(lambda: remote.counters["ingested"] == 20)
        await asyncio.sleep(0.3)
        second = list(remote.ingested_keys)
        assert kernel.points.read("rtu/P0").value == 40.0
    await client.close()
    assert first == [f"fe-a:{n}" for n in range(1, 21)]
    assert second == [f"fe-a:{n}" for n in range(21, 41)]
    values = [v for batch in ListSink.instances["historian"].of_type(MeasurementBatch) for v in batch.values[:1]]
    assert values == [float(n) for n in range(21, 41)]  # the second run's historian: each batch once, in order


async def test_core_fences_old_terms_drops_duplicates_and_foreign_point_lists(make_kernel, nats_env):
    client, js, subjects = await _publisher(nats_env)
    kernel = _core(make_kernel, nats_env)
    async with kernel:
        remote = kernel.sources["rtu"]
        for batch in (_ingest(1, term=5, instance="fe-b"), _ingest(7, term=3, instance="fe-a"),
                      _ingest(1, term=5, instance="fe-b", value=99.0), _ingest(2, term=5, instance="fe-b", digest=1)):
            await js.publish(subjects.meas("rtu"), encode_ingest(batch))
        await wait_for(lambda: remote.counters["rejected"] == 1)
        assert remote.counters == {"ingested": 1, "duplicates": 1, "fenced": 1, "rejected": 1, "reordered": 0}
        assert kernel.points.read("rtu/P0").value == 1.0
        await wait_for(lambda: ListSink.instances["historian"].of_type(Alarm))
        (alarm,) = ListSink.instances["historian"].of_type(Alarm)
        assert alarm.category == "config-mismatch" and "different point list" in alarm.message
    await client.close()


async def test_command_without_an_active_front_end_fails_with_a_reason(make_kernel, nats_env):
    kernel = _core(make_kernel, nats_env)
    async with kernel:
        result = await kernel.execute(Command("rtu/PSP0", 3.0, timeout_s=2.0))
    assert result.status is CommandStatus.FAILED
    assert "no active front-end of group 'north' runs source 'rtu'" in result.reason


async def _stored_events(js, subjects, subject):
    """Every message stored on ``subject`` of the events stream, oldest first (raw data)."""
    pull = await js.pull_subscribe(subject, stream=subjects.events_stream)
    found = []
    try:
        while True:
            try:
                messages = await pull.fetch(batch=100, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                return found
            found.extend(message.data for message in messages)
    finally:
        await pull.unsubscribe()


async def test_measurement_batches_go_packed_and_a_restarted_core_fetches_the_names_table(make_kernel, nats_env):
    client, js, subjects = await _publisher(nats_env)
    kernel = _core(make_kernel, nats_env)
    async with kernel:
        remote = kernel.sources["rtu"]
        for seq in range(1, 31):
            await js.publish(subjects.meas("rtu"), encode_ingest(_ingest(seq)), headers={"Nats-Msg-Id": f"fe-a:{seq}"})
            await asyncio.sleep(0.02)
        await wait_for(lambda: remote.counters["ingested"] == 30)
        await wait_for(lambda: sum(len(b) for b in ListSink.instances["historian"].of_type(MeasurementBatch)) == 30 * 4)
        first = ListSink.instances["historian"].of_type(MeasurementBatch)
        table = NamesTable.of(kernel.points.names)
    assert [list(batch.names) for batch in first] == [NAMES[:4]] * 30
    assert [batch.values[0] for batch in first] == [float(n) for n in range(1, 31)]
    stored = [msgpack.unpackb(data) for data in await _stored_events(js, subjects, subjects.event("MeasurementBatch"))]
    packed = [message for message in stored if message.get("packed") == 1]
    assert packed and all(message["table"] == table.digest for message in packed)  # unpacked only until the table was stored
    assert stored[-1].get("packed") == 1
    # a core with another point list (no sources) and a new historian reading from the start:
    # it has never seen the table, fetches it from the names bucket by digest
    kernel = _core(make_kernel, nats_env, sources="", sinks=SINK.replace('"historian"', '"archive"'))
    async with kernel:
        await wait_for(lambda: sum(len(b) for b in ListSink.instances["archive"].of_type(MeasurementBatch)) == 30 * 4)
        assert kernel.bus.stats()["sink:archive"].errors == 0
    again = ListSink.instances["archive"].of_type(MeasurementBatch)
    assert [list(batch.names) for batch in again] == [NAMES[:4]] * 30
    assert [batch.values[0] for batch in again] == [float(n) for n in range(1, 31)]
    await client.close()


async def test_packed_batch_with_an_unknown_names_table_is_dropped_with_an_error(make_kernel, nats_env, caplog):
    client, js, subjects = await _publisher(nats_env)
    table = NamesTable.of(["elsewhere/P0", "elsewhere/P1"])  # never stored in the names bucket
    batch = MeasurementBatch("rtu", np.array([1]), np.ones(1), np.zeros(1, np.uint16), np.ones(1), 1.0, table.names[[1]])
    await js.publish(subjects.event("MeasurementBatch"), encode_packed_batch(batch, table))
    await js.publish(subjects.event("Alarm"), encode_event(Alarm("after it", source="fe")))
    kernel = _core(make_kernel, nats_env, sources="")
    async with kernel:
        await wait_for(lambda: any(a.message == "after it" for a in ListSink.instances["historian"].of_type(Alarm)))
        assert kernel.bus.stats()["sink:historian"].errors == 1
    assert not ListSink.instances["historian"].of_type(MeasurementBatch)
    assert f"names table {table.digest} not found in KV bucket {nats_env.prefix}_NAMES" in caplog.text
    await client.close()
