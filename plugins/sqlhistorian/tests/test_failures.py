"""A failing historian database must not stop the kernel, starve other sinks or lose rows.

With the spool (the default) rows written while the database fails are acknowledged from
the disk spool and replayed in order; without it (``spool = false``) the writes fail and
are counted by the bus, as any sink's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import pytest

import dms_replay.plugin
import dms_sqlhistorian.plugin
from dms_hookspecs import Event, MeasurementBatch, Sink, TypeRegistry, hookimpl
from dms_kernel.errors import PluginError
from dms_sqlhistorian import query


class RecordingSink(Sink):
    """Keeps every event it receives."""

    def __init__(self, name, settings) -> None:
        super().__init__(name, settings)
        self.events: list[Event] = []

    async def write(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def batches(self) -> int:
        return sum(isinstance(event, MeasurementBatch) for event in self.events)


class RecordingPlugin:
    @hookimpl
    def dms_add_sink_types(self, registry: TypeRegistry) -> None:
        registry.add("recording", RecordingSink)


def deployment(url: str, extra: str = "") -> str:
    return f"""
        [deployment]
        name = "failure test"

        [[sources]]
        name = "rtu"
        type = "random_walk"
        settings = {{ points = 3, period_s = 0.05, prefix = "S1/U", seed = 1 }}

        [[sinks]]
        name = "historian"
        type = "sql"
        settings = {{ url = "{url}"{extra} }}

        [[sinks]]
        name = "recorder"
        type = "recording"
    """


def stored_rows(path: Path, table: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(f"SELECT id, point, value, quality, source_time FROM {table} ORDER BY id").fetchall()


def rename(path: Path, old: str, new: str) -> None:
    with closing(sqlite3.connect(path, timeout=10)) as db:
        db.execute(f"ALTER TABLE {old} RENAME TO {new}")
        db.commit()


async def test_without_spool_failing_writes_are_counted_and_the_kernel_keeps_running(make_kernel, sqlite_db, wait_until, caplog):
    path, url = sqlite_db
    kernel = make_kernel(
        dms_replay.plugin, dms_sqlhistorian.plugin, ("recording", RecordingPlugin()), deployment=deployment(url, ", spool = false")
    )
    async with kernel:
        recorder = kernel.sinks["recorder"]
        stats = kernel.bus.stats
        await wait_until(lambda: path.exists() and query.count(url) >= 9, what="first rows")

        # take the table away under the running sink: every write now fails
        rename(path, "measurements", "measurements_saved")
        saved = stored_rows(path, "measurements_saved")
        await wait_until(lambda: stats()["sink:historian"].errors >= 3, what="failed writes")

        # the kernel keeps running: the source publishes, the other sink still receives
        batches, updates = recorder.batches(), kernel.counters["updates"]
        await wait_until(lambda: recorder.batches() >= batches + 3 and kernel.counters["updates"] > updates)
        assert stats()["sink:historian"].errors >= 3

        # repair the database: the sink resumes by itself, the saved rows are all there
        rename(path, "measurements_saved", "measurements")
        await wait_until(lambda: query.count(url) > len(saved), what="writes to resume")

    final = kernel.bus.stats()
    assert final["sink:historian"].errors >= 3
    assert final["sink:recorder"].errors == 0 and final["sink:recorder"].dropped == 0
    assert final["sink:historian"].delivered > 0
    assert "no such table: measurements" in caplog.text
    # nothing committed before the failure was lost or changed
    assert saved and stored_rows(path, "measurements")[: len(saved)] == saved
    # and the newest stored values are those of the point database again
    for name in ("S1/U0", "S1/U1", "S1/U2"):
        assert query.latest(url, name) == kernel.points.read(name)


async def test_with_spool_failing_writes_are_spooled_and_replayed_in_order(make_kernel, sqlite_db, wait_until, caplog):
    path, url = sqlite_db
    kernel = make_kernel(
        dms_replay.plugin,
        dms_sqlhistorian.plugin,
        ("recording", RecordingPlugin()),
        deployment=deployment(url, ", retry_s = 0.05, retry_max_s = 0.2"),
    )
    async with kernel:
        recorder, historian = kernel.sinks["recorder"], kernel.sinks["historian"]
        await wait_until(lambda: path.exists() and query.count(url) >= 9, what="first rows")

        rename(path, "measurements", "measurements_saved")
        await wait_until(lambda: historian.status()["rows_spooled"] >= 9, what="rows spooled")
        assert historian.status()["spooling"]
        batches = recorder.batches()
        await wait_until(lambda: recorder.batches() >= batches + 3, what="the kernel to keep running")
        assert historian.status()["spooling"]

        rename(path, "measurements_saved", "measurements")
        await wait_until(lambda: not historian.status()["spooling"], what="the spool to be replayed")
        replayed = historian.status()["rows_replayed"]
        assert replayed >= historian.status()["rows_spooled"] >= 9

    stats = kernel.bus.stats()["sink:historian"]
    assert (stats.errors, stats.dropped) == (0, 0)
    assert "no such table: measurements" in caplog.text
    # every value the other sink received is stored, in the same order, none twice
    received = [
        (str(m.point), m.value, m.source_time)
        for event in recorder.events
        if isinstance(event, MeasurementBatch)
        for m in event.measurements()
    ]
    assert [(point, value, t) for _, point, value, _, t in stored_rows(path, "measurements")] == received
    assert historian.rows_written == len(received) + len(query.records(url, "audit"))
    assert not list((path.parent / "historian.db.spool" / "historian").glob("*.spool"))


async def test_an_unusable_database_at_startup_fails_start_naming_the_sink(make_kernel, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    kernel = make_kernel(
        dms_sqlhistorian.plugin,
        deployment=f"""
            [deployment]
            name = "t"
            [[sinks]]
            name = "historian"
            type = "sql"
            settings = {{ url = "sqlite:///{blocker}/historian.db" }}
        """,
    )
    with pytest.raises(PluginError, match="sink 'historian'") as info:
        await kernel.start()
    assert info.value.hook == "Sink.open"
    assert info.value.plugin == "dms_sqlhistorian.plugin"
    await kernel.stop()


async def test_schema_setting_is_refused_for_sqlite(make_kernel, tmp_path):
    kernel = make_kernel(
        dms_sqlhistorian.plugin,
        deployment=f"""
            [deployment]
            name = "t"
            [[sinks]]
            name = "historian"
            type = "sql"
            settings = {{ url = "sqlite:///{tmp_path}/h.db", schema = "history" }}
        """,
    )
    with pytest.raises(PluginError, match="schema.*not supported with SQLite"):
        await kernel.prepare()
