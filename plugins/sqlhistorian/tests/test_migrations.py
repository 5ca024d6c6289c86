"""Schema migrations: new, current and 0.1 databases are upgraded; corrupt and foreign ones refused by name."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

from dms_hookspecs import MeasurementBatch
from dms_sqlhistorian import query
from dms_sqlhistorian.migrate import LEGACY_COLUMNS, HistorianDatabaseError, head_revision
from dms_sqlhistorian.schema import TABLES
from dms_sqlhistorian.sink import SqlSink

LEGACY_SQL = Path(__file__).parent / "data" / "legacy_0.1_sqlite.sql"


def sink(url: str, tmp_path: Path, **settings) -> SqlSink:
    return SqlSink("historian", {"url": url, "spool_dir": str(tmp_path / "spool"), **settings})


def batch(names: list[str], start: float) -> MeasurementBatch:
    size = len(names)
    return MeasurementBatch("rtu", np.arange(size), np.arange(size) + start, np.zeros(size, np.uint16), np.full(size, start), names=names)


def revision(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


async def test_a_new_database_is_created_at_the_newest_revision(tmp_path):
    path = tmp_path / "h.db"
    historian = sink(f"sqlite:///{path}", tmp_path)
    await historian.open()
    await historian.close()
    assert revision(path) == head_revision()
    assert set(inspect(create_engine(f"sqlite:///{path}")).get_table_names()) == set(TABLES) | {"alembic_version"}
    await historian.open()  # opening again changes nothing
    await historian.close()
    assert revision(path) == head_revision()


async def test_a_database_of_version_0_1_is_adopted_with_its_rows(tmp_path):
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as db:  # exactly what dms-sqlhistorian 0.1's create_tables wrote
        db.executescript(LEGACY_SQL.read_text())
        db.execute("INSERT INTO measurements (point, value, quality, source_time, receive_time, source) VALUES ('P1', 1.5, 0, 10.0, 10.1, 'rtu')")
        db.execute("INSERT INTO audit (time, actor, action, subject, detail) VALUES (1.0, 'kernel', 'kernel.start', 'old', '')")
        db.commit()
    url = f"sqlite:///{path}"
    historian = sink(url, tmp_path)
    await historian.open()
    await historian.write([batch(["P1", "P2"], 20.0)])
    await historian.close()
    assert revision(path) == head_revision()
    assert [(m.value, m.source_time) for m in query.history(url, "P1")] == [(1.5, 10.0), (20.0, 20.0)]
    assert query.records(url, "audit")[0]["action"] == "kernel.start"
    assert query.count(url, "forecasts") == 0


async def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "junk.db"
    junk = np.random.default_rng(7).bytes(8192)
    path.write_bytes(junk)
    historian = sink(f"sqlite:///{path}", tmp_path)
    with pytest.raises(HistorianDatabaseError, match=f"{path}.*not a SQLite database or is corrupt"):
        await historian.open()
    assert path.read_bytes() == junk
    assert not (tmp_path / "spool").exists()


async def test_a_foreign_database_with_the_same_table_names_is_refused(tmp_path):
    path = tmp_path / "foreign.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE measurements (sensor TEXT, reading REAL)")
        db.execute("CREATE TABLE alarms (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO measurements VALUES ('t1', 21.5)")
        db.commit()
    before = path.read_bytes()
    historian = sink(f"sqlite:///{path}", tmp_path)
    with pytest.raises(HistorianDatabaseError, match=f"database {path} is not a Leitstand historian"):
        await historian.open()
    assert path.read_bytes() == before


async def test_all_legacy_table_names_with_other_columns_are_refused(tmp_path):
    path = tmp_path / "foreign.db"
    with closing(sqlite3.connect(path)) as db:
        for table in LEGACY_COLUMNS:
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, payload TEXT)")
        db.commit()
    historian = sink(f"sqlite:///{path}", tmp_path)
    with pytest.raises(HistorianDatabaseError, match=r"not a Leitstand historian: table 'measurements' has columns \(id, payload\)"):
        await historian.open()


async def test_an_unknown_revision_is_refused(tmp_path):
    path = tmp_path / "newer.db"
    historian = sink(f"sqlite:///{path}", tmp_path)
    await historian.open()
    await historian.close()
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
        db.commit()
    with pytest.raises(HistorianDatabaseError, match=f"{path} is at schema revision 9999"):
        await historian.open()


async def test_postgresql_database_of_version_0_1_is_adopted(postgres, tmp_path):
    url, schema = postgres
    engine = create_engine(url)
    try:
        with engine.begin() as connection:  # the 0.1 layout: revision 0001 without its record
            from alembic import command

            from dms_sqlhistorian.migrate import _config

            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            config = _config(connection, schema)
            command.upgrade(config, "0001")
            connection.execute(text(f'DROP TABLE "{schema}".alembic_version'))
            connection.execute(text(
                f"INSERT INTO \"{schema}\".measurements (point, value, quality, source_time, receive_time, source) "
                "VALUES ('P1', 1.5, 0, 10.0, 10.1, 'rtu')"
            ))
    finally:
        engine.dispose()
    historian = sink(url, tmp_path, schema=schema)
    await historian.open()
    await historian.write([batch(["P1"], 20.0)])
    await historian.close()
    assert [m.value for m in query.history(url, "P1", schema=schema)] == [1.5, 20.0]
    assert query.count(url, "forecasts", schema=schema) == 0
