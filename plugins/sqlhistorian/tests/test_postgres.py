"""The ``sql`` sink on PostgreSQL (psycopg 3) over a real connection, in a fresh schema per test."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

import dms_replay.plugin
import dms_sqlhistorian.plugin
from dms_hookspecs import Alarm, AlarmPriority, Command
from dms_sqlhistorian import query
from dms_sqlhistorian.schema import TABLES

NAMES = ["S2/I0", "S2/I1", "S2/I2"]


def deployment(url: str, schema: str, spool_dir: Path) -> str:
    return f"""
        [deployment]
        name = "postgres test"

        [[sources]]
        name = "rtu"
        type = "random_walk"
        settings = {{ points = 3, period_s = 0.05, prefix = "S2/I", nominal = 120.0, step = 2.0, seed = 3, controls = 1 }}

        [[sinks]]
        name = "historian"
        type = "sql"
        settings = {{ url = "{url}", schema = "{schema}", spool_dir = "{spool_dir}", retry_s = 0.05 }}
    """


async def test_postgresql_stores_measurements_and_events(make_kernel, postgres, wait_until, tmp_path):
    url, schema = postgres
    kernel = make_kernel(dms_replay.plugin, dms_sqlhistorian.plugin, deployment=deployment(url, schema, tmp_path / "spool"))
    alarm = Alarm("feeder current high", AlarmPriority.CRITICAL, source="limits", category="limit")
    async with kernel:
        historian = kernel.sinks["historian"]
        assert historian.engine.dialect.driver == "psycopg"
        await wait_until(lambda: all(query.count(historian.engine, point=name) >= 5 for name in NAMES), what="rows in PostgreSQL")
        kernel.emit(alarm)
        result = await kernel.execute(Command(target="S2/ISP0", value=95.5, originator="operator2"))
        assert result.ok, result

    assert kernel.bus.stats()["sink:historian"].errors == 0
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names(schema=schema)) == set(TABLES) | {"alembic_version"}
        with engine.connect() as connection:  # the data really is in the test's schema
            stored = connection.execute(text(f'SELECT count(*) FROM "{schema}".measurements')).scalar_one()
        assert stored == sum(query.counts_by_point(url, schema=schema).values()) >= 15
    finally:
        engine.dispose()

    for name in NAMES + ["S2/ISP0"]:
        assert query.latest(url, name, schema=schema) == kernel.points.read(name)
    assert query.latest(url, "S2/ISP0", schema=schema).value == 95.5
    [stored_alarm] = query.records(url, "alarms", schema=schema)
    assert (stored_alarm["alarm_id"], stored_alarm["priority"], stored_alarm["point"]) == (alarm.id, 1, None)
    [stored_result] = query.records(url, "command_results", schema=schema)
    assert stored_result["status"] == "succeeded"
    assert query.records(url, "audit", schema=schema)[-1]["action"] == "kernel.stop"


async def test_postgresql_connection_loss_is_recovered(make_kernel, postgres, wait_until, tmp_path):
    url, schema = postgres
    tagged = f"{url}?application_name={schema}"  # lets the test kill only this sink's connections
    kernel = make_kernel(dms_replay.plugin, dms_sqlhistorian.plugin, deployment=deployment(tagged, schema, tmp_path / "spool"))
    admin = create_engine(url)
    try:
        async with kernel:
            await wait_until(lambda: query.count(url, schema=schema) >= 6, what="first rows")
            with admin.connect() as connection:
                killed = connection.execute(
                    text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": schema},
                ).scalar_one()
            assert killed >= 1
            before = query.count(url, schema=schema)
            await wait_until(lambda: query.count(url, schema=schema) > before + 6, what="writes after reconnect")
    finally:
        admin.dispose()
    # the write in progress at the moment of the kill was spooled and replayed: nothing failed
    assert kernel.bus.stats()["sink:historian"].errors == 0
    for name in NAMES:
        assert query.latest(url, name, schema=schema) == kernel.points.read(name)
