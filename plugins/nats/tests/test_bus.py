"""The NATS bus in the core, against the real server: durable consumers resume where they stopped."""

from __future__ import annotations

import asyncio

import nats
import numpy as np

import dms_nats.plugin
import dms_replay.plugin
from nats_support import ListSink, list_sink, wait_for
from dms_hookspecs import Alarm, AuditEntry, Command, CommandStatus, MeasurementBatch
from dms_nats import NatsBus, RemoteSource
from dms_nats.connection import ensure_streams
from dms_nats.schema import IngestBatch, Subjects, encode_event, encode_ingest, points_digest

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
    return make_kernel(dms_replay.plugin, ("nats", dms_nats.plugin), list_sink, deployment=nats_env.toml(sources, sinks))


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
