"""The production path, as processes: `leitstand frontend` → NATS JetStream → `leitstand run` (core,
bus "nats") → SQL historian on PostgreSQL. The core is killed with SIGKILL while the front-end
keeps publishing; after its restart the historian holds every value the front-end published."""

from __future__ import annotations

import signal
import time

import nats
import pytest
from sqlalchemy import create_engine, text

from nats_support import start_leitstand, stop_leitstand, wait_for
from dms_nats.schema import Subjects, decode_ingest
from dms_replay import RtuSimSource

pytest.importorskip("dms_sqlhistorian")

SETTINGS = {"rtus": 2, "points": 5, "rate": 4.0, "period_s": 0.1, "prefix": "", "nominal": 100.0, "step": 0.5,
            "unit": "A", "seed": 7}


def _deployment(nats_env, url: str, schema: str, spool: str) -> str:
    return nats_env.toml(
        sources='''
[plugins]
enable = ["replay", "nats", "sqlhistorian"]   # start-up in seconds, not every installed plugin

[[sources]]
name = "rtu"
type = "rtu_sim"
group = "north"
settings = { rtus = 2, points = 5, rate = 4.0, period_s = 0.1, seed = 7 }
''',
        sinks=f'''
[[sinks]]
name = "historian"
type = "sql"
settings = {{ url = "{url}", schema = "{schema}", spool_dir = "{spool}", maintenance_interval_s = 0.0 }}
''',
    )


def _stored(engine, schema: str) -> list[tuple[str, float, float]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(f'SELECT point, source_time, value FROM "{schema}".measurements'))]


async def _published(nats_env) -> list[tuple[str, float, float, float]]:
    """Every value in the measurement stream: what the front-end published and JetStream acknowledged."""
    names = [spec.id.name for spec in RtuSimSource("rtu", SETTINGS).points()]
    client = await nats.connect(nats_env.url)
    js = client.jetstream()
    subjects = Subjects(nats_env.deployment, nats_env.prefix)
    total = (await js.stream_info(subjects.meas_stream)).state.messages
    subscription = await js.pull_subscribe(subjects.meas("rtu"), durable="check", stream=subjects.meas_stream)
    values = []
    received = 0
    while received < total:
        for message in await subscription.fetch(batch=500, timeout=5):
            batch = decode_ingest(message.data)
            received += 1
            values += [(names[o], t, v, batch.receive_time) for o, t, v in zip(batch.offsets.tolist(), batch.source_time.tolist(), batch.values.tolist())]
            await message.ack()
    await client.close()
    return values


async def test_kill_9_core_restart_historian_has_every_value(nats_env, postgres_schema, tmp_path):
    url, schema = postgres_schema
    path = tmp_path / "deployment.toml"
    path.write_text(_deployment(nats_env, url, schema, tmp_path / "spool"))
    engine = create_engine(url)
    frontend = start_leitstand(tmp_path, "frontend", "frontend", str(path), "--group", "north", "--instance", "fe-a")
    core = start_leitstand(tmp_path, "core", "run", str(path))
    try:
        def stored_count() -> int:
            try:
                return len(_stored(engine, schema))
            except Exception:  # noqa: BLE001 - tables not created yet
                return 0

        await wait_for(lambda: stored_count() >= 40, timeout=40, interval=0.25)
        core.send_signal(signal.SIGKILL)
        core.wait()
        killed_at = time.time()
        before = stored_count()
        time.sleep(2.0)  # the front-end publishes on into the stream
        core = start_leitstand(tmp_path, "core", "run", str(path))
        await wait_for(lambda: stored_count() >= before + 120, timeout=40, interval=0.25)
        stop_leitstand(frontend)
        published = await _published(nats_env)
        try:
            await wait_for(lambda: {v[:3] for v in published} <= set(_stored(engine, schema)), timeout=15, interval=0.25)
        except AssertionError:
            pass  # reported below
    finally:
        stop_leitstand(frontend)
        stop_leitstand(core)
        engine.dispose()
    stored = _stored(engine, schema)
    missing = {v[:3] for v in published} - set(stored)
    late = sorted(v[3] - killed_at for v in published if v[:3] in missing)
    assert not missing, (
        f"{len(missing)} of {len(published)} published values not in the historian "
        f"(received {late[0]:.2f} .. {late[-1]:.2f} s after the kill)"
    )
    during_outage = [v for v in published if killed_at < v[3] < killed_at + 2.0]
    assert len(during_outage) >= 40, "the front-end kept publishing while the core was down"
    assert len(stored) - len(set(stored)) <= len(stored) // 2  # at-least-once: few duplicates, if any
